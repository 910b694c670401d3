"""A worker that takes an account over decides like one that never stopped (issue 13).

The ledger writes an account's row at once for inputs that emit events and at most every
``ledger_row_interval_s`` for those that emit nothing (marks, the strategy's progress),
while Faust commits the positions of all of them. Here the row is written only for the
first input (the interval is an hour), the worker is SIGKILLed once its group committed
past inputs its row does not hold, and a new worker (its own data dir: the row comes from
the changelog) takes over: it folds those inputs again from trading.commands
(``catch_up``) before the next one, and trading.events equal what the ledger's fold gives
over the same inputs without a stop."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Consumer, TopicPartition

from agents.ledger import AGENT, CAUGHT_UP
from domain.clock import to_micros
from domain.fold import step
from domain.market.marks import MarkSlice, mark_record
from domain.parity import comparable
from domain.trading.account import Account, Input, decider
from domain.trading.orders import progress_record
from schemas.records import Event, OrderFilled, OrderPlaced, OrderType, PlaceOrder, Side
from streams.kafka.admin import create_topics, end_offsets
from streams.kafka.codec import AvroCodec
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_all
from streams.kafka.registry import make_registry
from streams.settings import Settings
from tables.trading import trading_config
from tests.harness import BrokerUnderTest, WorkerProcess, free_port, settings_for, start_worker

ACCOUNT = "paper-takeover"
T0 = datetime(2024, 7, 19, 12, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TOPIC = "trading.commands"


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def marks(second: int) -> list[Input]:
    """One mark per symbol for the second ending at ``second``."""
    time_us = to_micros(at(second))
    return [mark_record(MarkSlice(symbol, time_us - 1_000_000, time_us, 1000 * s + second,
                                  (64_000 + 10 * s + second % 3) * 10**18, (2 + second % 2) * 10**16, 2))
            for s, symbol in enumerate(SYMBOLS)]


def progress(second: int) -> list[Input]:
    """Every symbol's strategy has decided up to ``second``."""
    return [progress_record(ACCOUNT, symbol, "ema_cross", at(second), at(second)) for symbol in SYMBOLS]


def order(n: int, symbol: str, second: int, side: Side) -> PlaceOrder:
    return PlaceOrder(envelope=PlaceOrder.envelope_for(event_time=at(second), producer="strategy.ema_cross",
                                                       event_id=f"takeover-cmd-{n}"),
                      order_id=f"{ACCOUNT}:takeover-{n}", account=ACCOUNT, symbol=symbol, side=side,
                      order_type=OrderType.MARKET, quantity=Decimal("0.02"), strategy="ema_cross")


BEFORE_STOP: list[Input] = [*marks(0), *progress(0), *[m for s in range(1, 11) for m in marks(s)], *progress(4)]
"""Inputs that emit nothing: the row holds the first; the rest, the marks after the
account's time and the progress to 4 s, only the worker's memory (and the committed offset)."""
AFTER_STOP: list[Input] = [order(1, "BTCUSDT", 2, Side.BUY), order(2, "ETHUSDT", 6, Side.SELL), *progress(10)]
"""An order within the account's time (decided at once against the marks to 4 s), one after
it (held until the progress to 10 s), then that progress: both fill against the marks."""


def produce(settings: Settings, inputs: list[Input]) -> None:
    with EventProducer(settings) as producer:
        for item in inputs:
            producer.send(TOPIC, item, key=ACCOUNT)


def committed(settings: Settings) -> int:
    """The offset the workers' consumer group committed on the account's partition of TOPIC."""
    partition = next(r.partition for r in read_all(settings, TOPIC))
    consumer = Consumer({**settings.kafka_client_config(), "group.id": settings.app_id,
                         "enable.auto.commit": False})
    try:
        return int(consumer.committed([TopicPartition(TOPIC, partition)], timeout=10)[0].offset)
    finally:
        consumer.close()


def wait_for(what: str, check: Any, worker: WorkerProcess, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{worker.tail()}")
        time.sleep(0.5)
    return found


def uninterrupted(settings: Settings, inputs: list[tuple[int, int, Input]], cut: int | None = None) -> dict[str, Any]:
    """The events the ledger's fold gives over the inputs (partition, offset, record) without a
    stop; with ``cut``, as a worker would that resumed at input ``cut`` from a row holding
    only the first input (no catch-up): what the test must tell apart."""
    decide = decider(trading_config(settings))
    state, events = Account.open(ACCOUNT, settings.initial_cash), list[Event]()
    for n, (partition, offset, item) in enumerate(inputs):
        if cut is not None and 1 <= n < cut:
            continue
        state, emitted = step(decide, state, item, partition, offset)
        events += emitted
    return published(events)


def published(events: list[Event]) -> dict[str, Any]:
    """Events by id; an id never comes with two values."""
    found: dict[str, Any] = {}
    for event in events:
        assert found.setdefault(event.envelope.event_id, comparable(event)) == comparable(event), event
    return found


def test_a_worker_that_takes_over_folds_again_what_the_row_missed_and_decides_as_without_a_stop(
        isolated_broker: BrokerUnderTest, tmp_path: Path) -> None:
    settings = settings_for(isolated_broker, tmp_path, trading_account=ACCOUNT, ledger_wait_s=600,
                            ledger_row_interval_s=3600)
    create_topics(settings)
    produce(settings, BEFORE_STOP)
    first = start_worker(settings, tmp_path / "worker-1.log")
    try:
        wait_for("the inputs to be folded", lambda: first.processed(AGENT) >= len(BEFORE_STOP), first)
        end = end_offsets(settings, TOPIC)
        wait_for("the group to commit past them", lambda: committed(settings) == max(end), first)
    finally:
        first.stop(signal.SIGKILL)
    assert not any(isinstance(r, Consumed) for r in read_topic(settings, "trading.events", idle_timeout=1))

    second = start_worker(settings.model_copy(update={"data_dir": tmp_path / "data-2", "web_port": free_port()}),
                          tmp_path / "worker-2.log")
    try:
        produce(settings, AFTER_STOP)
        wait_for("the new inputs to be folded", lambda: second.processed(AGENT) >= len(AFTER_STOP), second)
        caught_up = second.processed(CAUGHT_UP)
    finally:
        second.discard()

    codec = AvroCodec(make_registry(None))
    inputs = [(r.partition, r.offset, cast(Input, codec.decode(r.value))) for r in read_all(settings, TOPIC)]
    assert len(inputs) == len(BEFORE_STOP) + len(AFTER_STOP)
    expected = uninterrupted(settings, inputs)
    live = published([r.event for r in read_topic(settings, "trading.events", idle_timeout=2, until_end=True)
                      if isinstance(r, Consumed)])
    assert live == expected
    assert caught_up == len(BEFORE_STOP) - 1  # all but the first input, which the row held
    assert f"folded {len(BEFORE_STOP) - 1} inputs again after its row" in (tmp_path / "worker-2.log").read_text()
    kinds = {value["type"] for value in expected.values()}
    assert {OrderPlaced.__name__, OrderFilled.__name__} <= kinds
    assert uninterrupted(settings, inputs, cut=len(BEFORE_STOP)) != expected  # without the catch-up
