"""The ledger driver's orchestration, in-process: takeover, row writes, gaps, failures, the
expiry timer. Its ports here keep rows as the worker does (``tables.trading.account_row`` /
``load_account`` through JSON) and records as the codec's bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.clock import to_micros
from domain.trading.account import Account, Input, Patience, decider
from domain.trading.orders import TradingConfig
from schemas.records import Event, OrderFilled, OrderPlaced, Side
from streams.errors import BrokerError
from streams.trading.ledger_driver import ROW_WRITE_SHARE, LedgerDriver
from tables.trading import account_row, load_account
from tests.unit.test_ledger_interleavings import CODEC, CONFIG, REPORTED, T0, mark, order, progressed

ACCOUNT = "acct"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Ports:
    """Rows as JSON (what a restarted worker reads), trading.commands as the codec's bytes."""

    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}
        self.topic: list[tuple[int, bytes | None]] = []  # partition 0: (offset, value), key ACCOUNT
        self.published: list[Event] = []
        self.writes = 0
        self.write_s = 0.0
        self.broken = False
        self.caught = 0

    def row(self, account: str) -> Account:
        return load_account(self.rows, account, Decimal(100_000))

    async def write(self, account: str, state: Account) -> float:
        self.rows[account] = json.loads(json.dumps(account_row(state)))
        self.writes += 1
        return self.write_s

    async def publish(self, account: str, events: Sequence[Event]) -> None:
        if self.broken and events:
            raise BrokerError("broker down")
        self.published += events

    async def inputs(self, account: str, partition: int, start: int, end: int) -> list[tuple[int, bytes | None]]:
        return [(offset, value) for offset, value in self.topic if start <= offset < end]

    def decode(self, value: bytes | None) -> Event:
        return CODEC.decode(value)

    def accounts(self) -> Iterable[str]:
        return list(self.rows)

    def caught_up(self, inputs: int) -> None:
        self.caught += inputs


def driver(ports: Ports, clock: Clock, config: TradingConfig = CONFIG, row_interval_s: float = 3600.0,
           patience: Patience | None = None) -> LedgerDriver:
    return LedgerDriver(decider(config), ports, config, patience or Patience(20_000_000, 140_000_000),
                        row_interval_s, clock)


Record = Input | bytes
"""An input, or bytes that are none (the agent dead-letters them before the driver sees them)."""


def inputs() -> list[Record]:
    """Marks, an order (placed, then filled by the next mark), a record that is not one, then
    quiet marks (they emit nothing)."""
    at = [T0 + timedelta(seconds=n) for n in range(12)]
    quiet = [mark("BTC", n, at[n], Decimal(100 + n), Decimal(1)) for n in range(3, 12)]
    return [mark("BTC", 0, at[0], Decimal(100), Decimal(2)), order("BTC", 1, at[1], Side.BUY, Decimal(1)),
            mark("BTC", 2, at[2], Decimal(101), Decimal(2)), b"\x00not a record", *quiet]


def feed(d: LedgerDriver, ports: Ports, records: list[tuple[int, Record]]) -> None:
    """As the agent hands records over: each is on the topic, handed, and folded if it is an input."""
    for offset, record in records:
        ports.topic.append((offset, record if isinstance(record, bytes) else CODEC.encode(record)))
        d.handed(0, offset)
        if not isinstance(record, bytes):
            asyncio.run(d.on_input(ACCOUNT, record, 0, offset))


def test_a_worker_that_takes_an_account_over_folds_what_its_row_does_not_hold_and_decides_alike() -> None:
    """The first worker writes the row only for the inputs that emitted (the quiet ones wait
    for the interval), then stops. The next folds what the row does not hold from the topic
    before the input it is handed (the record that is none is passed over again), and its row
    equals that of a worker that never stopped; what it publishes again has the same ids."""
    records = list(enumerate(inputs()))
    first = Ports()
    feed(driver(first, Clock()), first, records[:-1])
    row_offset = first.rows[ACCOUNT]["input"][1]
    assert row_offset == 2  # the fill; the quiet marks after it are not in the row

    second = Ports()
    second.rows, second.topic = json.loads(json.dumps(first.rows)), list(first.topic)
    feed(driver(second, Clock()), second, records[-1:])

    never_stopped = Ports()
    d = driver(never_stopped, Clock())
    feed(d, never_stopped, records)
    asyncio.run(never_stopped.write(ACCOUNT, d.state(ACCOUNT)))
    last_offset = records[-1][0]
    assert second.caught == last_offset - row_offset - 1  # the record that is none included
    assert second.rows[ACCOUNT] == never_stopped.rows[ACCOUNT]
    assert second.rows[ACCOUNT]["input"] == [0, last_offset]
    assert {e.envelope.event_id for e in second.published} <= {e.envelope.event_id for e in first.published}


def test_rows_are_written_at_once_for_events_and_at_most_every_interval_for_quiet_inputs() -> None:
    ports, clock = Ports(), Clock()
    d = driver(ports, clock, row_interval_s=1.0)
    records = list(enumerate(inputs()))
    feed(d, ports, records[:1])
    assert ports.writes == 1  # the first input this worker folds: the row says where it began
    feed(d, ports, records[1:2])
    assert ports.writes == 2 and [type(e) for e in ports.published] == [OrderPlaced]
    clock.now += 0.5
    feed(d, ports, records[2:3])
    assert ports.writes == 3 and any(isinstance(e, OrderFilled) for e in ports.published)  # events: at once
    feed(d, ports, records[3:5])
    clock.now += 0.9
    feed(d, ports, records[5:6])
    assert ports.writes == 3  # quiet, within the interval
    clock.now += 0.2
    feed(d, ports, records[6:7])
    assert ports.writes == 4 and ports.rows[ACCOUNT]["input"] == [0, 6]
    ports.write_s = 0.05  # slow rows: writing them may take at most ROW_WRITE_SHARE of the time
    clock.now += 1.1
    feed(d, ports, records[7:8])
    assert ports.writes == 5
    clock.now += 0.05 / ROW_WRITE_SHARE - 0.5
    feed(d, ports, records[8:9])
    assert ports.writes == 5
    clock.now += 1.0
    feed(d, ports, records[9:10])
    assert ports.writes == 6


def test_a_gap_in_what_faust_hands_over_makes_the_driver_fold_on_from_the_rows() -> None:
    ports, clock = Ports(), Clock()
    d = driver(ports, clock)
    items = list(enumerate(inputs()))
    feed(d, ports, items[:4])
    assert ACCOUNT in d.accounts
    d.handed(0, 4)
    assert ACCOUNT in d.accounts  # the next offset: no gap
    d.handed(0, 9)
    assert d.accounts == {} and d.rows_read == {}
    assert d.state(ACCOUNT).applied.offset == ports.rows[ACCOUNT]["input"][1]


def test_an_input_whose_events_do_not_reach_the_broker_leaves_the_account_as_its_row_has_it() -> None:
    ports, clock = Ports(), Clock()
    d = driver(ports, clock)
    items = list(enumerate(inputs()))
    feed(d, ports, items[:1])
    ports.broken = True
    with pytest.raises(BrokerError):
        feed(d, ports, items[1:2])  # the order is placed: its event cannot be sent
    assert ACCOUNT not in d.accounts
    assert d.state(ACCOUNT).applied.offset == 0 and not d.state(ACCOUNT).portfolio.orders
    ports.broken = False
    feed(d, ports, items[1:2])  # sent again (a re-delivery): decided as the first time would have
    assert [type(e) for e in ports.published] == [OrderPlaced] and d.state(ACCOUNT).portfolio.orders


def test_the_timer_asks_an_account_held_by_a_silent_strategy_to_decide_once_patience_runs_out() -> None:
    """BTC's order waits for ETH's strategy, which has gone silent: not asked at 19 s without
    input, asked at 21 s, at the latest input's event time."""
    ports, clock = Ports(), Clock()
    d = driver(ports, clock, config=REPORTED, patience=Patience(idle_us=20_000_000, stalled_us=140_000_000))
    items: list[Input] = [mark("BTC", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
                          mark("ETH", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
                          progressed("BTC", T0), progressed("ETH", T0),
                          order("BTC", 1, T0 + timedelta(seconds=5), Side.BUY, Decimal(1)),
                          progressed("BTC", T0 + timedelta(seconds=5))]
    clock.now += 10  # the inputs come 10 s after the worker started: idle counts from them
    feed(d, ports, list(enumerate(items)))
    now_us = to_micros(T0) + 3600_000_000
    clock.now += 19
    assert d.due_expiries(now_us) == []
    clock.now += 2
    assert d.due_expiries(now_us) == [(ACCOUNT, to_micros(T0 + timedelta(seconds=5)))]
    assert d.due_expiries(to_micros(T0)) == [(ACCOUNT, to_micros(T0))]  # never ahead of now
