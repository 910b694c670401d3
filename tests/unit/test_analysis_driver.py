"""The analysis driver's contract, in-process: states in memory, outputs before rows, rows
and progress at checkpoints, and a worker that takes a partition over (or restarts after a
crash) folding again what the rows do not hold, to the same states and the same events."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pytest

from domain.analysis.series import Analysis, Output
from schemas.records import Anomaly, Candle, IndicatorSnapshot
from streams.errors import BrokerError
from streams.hotpath.analysis_driver import AnalysisDriver
from tables.names import progress_key
from tests.factories import T0
from tests.unit.test_indicators import candle, random_walk

FOLD = Analysis("test")
PARTITION = 2


class Topic:
    """market.candles as the fake sees it: each value names its candle (anything else does not decode)."""

    def __init__(self) -> None:
        self.candles: list[Candle] = []

    def append(self, c: Candle) -> tuple[int, bytes]:
        self.candles.append(c)
        return len(self.candles) - 1, f"candle-{len(self.candles) - 1}".encode()

    def decode(self, value: bytes | None) -> Candle:
        text = (value or b"").decode()
        if not text.startswith("candle-"):
            raise ValueError(f"not a candle: {value!r}")
        return self.candles[int(text.removeprefix("candle-"))]


class Ports:
    """The driver's I/O in memory. Rows are kept as JSON (what the table's changelog holds);
    ``log`` records what happened in order: sent, delivered, wrote, progress."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic
        self.values: dict[int, bytes | None] = {}  # offset -> value (one partition)
        self.table: dict[tuple[int, str], str] = {}
        self.anomaly_rows: dict[tuple[int, str], str] = {}
        self.queued: list[Output] = []
        self.sent: list[Output] = []  # delivered
        self.log: list[str] = []
        self.refuse: set[str] = set()  # symbols whose outputs do not encode
        self.reads: list[tuple[int, int]] = []

    def progress(self, partition: int) -> int | None:
        row = self.table.get((partition, progress_key(partition)))
        return None if row is None else int(json.loads(row)["applied_through"])

    def row(self, partition: int, symbol: str) -> dict[str, Any]:
        row = self.table.get((partition, symbol))
        return json.loads(row) if row else {}

    def anomalies(self, partition: int, symbol: str) -> list[dict[str, Any]]:
        row = self.anomaly_rows.get((partition, symbol))
        return json.loads(row) if row else []

    async def read(self, partition: int, start: int, stop: int) -> list[tuple[int, bytes | None]]:
        self.reads.append((start, stop))
        return [(offset, self.values[offset]) for offset in range(start, stop) if offset in self.values]

    def send(self, outputs: Sequence[Output]) -> None:
        if any(o.symbol in self.refuse for o in outputs):
            raise ValueError("refused")
        self.queued.extend(outputs)
        self.log.extend(f"sent {o.envelope.event_id}" for o in outputs)

    async def delivered(self) -> None:
        self.sent.extend(self.queued)
        self.queued.clear()
        self.log.append("delivered")

    def write(self, partition: int, rows: dict[str, dict[str, Any]],
              anomalies: dict[str, list[dict[str, Any]]]) -> None:
        for symbol, row in rows.items():
            self.table[(partition, symbol)] = json.dumps(row)
            self.log.append(f"row {symbol}")
        for symbol, recent in anomalies.items():
            self.anomaly_rows[(partition, symbol)] = json.dumps(recent)

    def write_progress(self, partition: int, applied_through: int) -> None:
        self.table[(partition, progress_key(partition))] = json.dumps({"applied_through": applied_through})
        self.log.append(f"progress {applied_through}")


def driver_on(ports: Ports, intervals: tuple[str, ...] = ("1m",)) -> AnalysisDriver:
    return AnalysisDriver(FOLD, ports, ports.topic.decode, intervals, clock=lambda: T0)


def feed(driver: AnalysisDriver, ports: Ports, candles: list[Candle]) -> None:
    """Put each candle on the topic and hand it to the driver, as the agent does."""
    async def run() -> None:
        for c in candles:
            offset, value = ports.topic.append(c)
            ports.values[offset] = value
            await driver.on_candle(PARTITION, offset, c)
    asyncio.run(run())


def checkpoint(driver: AnalysisDriver) -> int:
    return asyncio.run(driver.checkpoint())


def state_of(ports: Ports, symbol: str = "BTCUSDT", interval: str = "1m") -> dict[str, Any]:
    return ports.row(PARTITION, symbol)[interval]["state"]


def folded_in_one_go(candles: list[Candle]) -> dict[str, Any]:
    """The state of a series of ``candles`` folded by one driver without a hitch."""
    ports = Ports(Topic())
    driver = driver_on(ports)
    feed(driver, ports, candles)
    checkpoint(driver)
    return state_of(ports)


def with_symbol(candles: list[Candle], symbol: str) -> list[Candle]:
    return [dataclasses.replace(c, symbol=symbol) for c in candles]


def test_outputs_go_at_once_and_rows_only_at_a_checkpoint_after_the_broker_has_them() -> None:
    ports = Ports(Topic())
    driver = driver_on(ports)
    feed(driver, ports, random_walk(30))
    assert len(ports.queued) >= 30 and ports.row(PARTITION, "BTCUSDT") == {}  # sent, no row yet
    assert ports.progress(PARTITION) == -1  # a new partition: it held nothing before its first candle
    assert checkpoint(driver) == 2  # the symbol's row and the progress row
    first_row = ports.log.index("row BTCUSDT")
    assert ports.log[first_row - 1] == "delivered" and ports.log[-1] == "progress 29"
    assert state_of(ports)["count"] == 30
    assert ports.row(PARTITION, "BTCUSDT")["1m"]["latest"]["candle_id"] == ports.sent[-1].candle_id
    assert ports.row(PARTITION, "BTCUSDT")["1m"]["applied"] == [PARTITION, 29]


def test_a_new_owner_folds_again_what_the_rows_miss_to_the_same_state_and_the_same_events() -> None:
    candles = random_walk(40)

    ports = Ports(Topic())
    crashed = driver_on(ports)
    feed(crashed, ports, candles[:15])
    checkpoint(crashed)
    feed(crashed, ports, candles[15:30])  # folded and sent, never checkpointed: then the worker dies
    ports.values[30] = b"\x00 not a candle"  # dead-lettered when it was first read
    ports.topic.append(candles[30])  # keeps offsets and candles in step
    sent_before = [o.envelope.event_id for o in ports.queued]
    ports.queued.clear()  # whether the broker got them or not, they went with the worker

    successor = driver_on(ports)
    feed(successor, ports, candles[31:])
    assert ports.reads == [(15, 31)]  # from after the progress row to the first candle handed over
    checkpoint(successor)
    assert state_of(ports) == folded_in_one_go(candles[:30] + candles[31:])  # the 31st did not decode
    again = [o.envelope.event_id for o in ports.sent if o.envelope.event_id in set(sent_before)]
    assert sorted(again) == sorted(sent_before)  # the same events, not new ones


def test_a_partition_without_a_progress_row_holds_everything_before_its_first_candle() -> None:
    """A new partition, or rows written for every candle by the versions before the driver."""
    ports = Ports(Topic())
    for c in random_walk(5):
        ports.topic.append(c)  # before this worker: already in the rows the old way
    driver = driver_on(ports)
    feed(driver, ports, random_walk(8)[5:])
    assert not ports.reads and ports.progress(PARTITION) == 4  # written at once, not read again
    assert ports.log[:2] == ["progress 4", "delivered"]


def test_an_output_that_does_not_encode_leaves_the_state_as_it_was() -> None:
    candles = random_walk(12)
    ports = Ports(Topic())
    driver = driver_on(ports)
    feed(driver, ports, candles[:10])
    ports.refuse.add("BTCUSDT")
    with pytest.raises(ValueError):
        feed(driver, ports, [candles[10]])
    ports.refuse.clear()
    feed(driver, ports, [candles[10], candles[11]])  # the retried candle, then the next
    checkpoint(driver)
    assert [o.candle_id for o in ports.sent if isinstance(o, IndicatorSnapshot)][-2:] == \
        [c.envelope.event_id for c in candles[10:]]  # its snapshot was sent when it was retried

    assert state_of(ports) == folded_in_one_go(candles)


def test_candles_of_an_interval_not_analysed_are_read_and_passed_over() -> None:
    ports = Ports(Topic())
    driver = driver_on(ports, intervals=("5m",))
    feed(driver, ports, random_walk(6))
    assert not ports.queued
    checkpoint(driver)
    assert ports.row(PARTITION, "BTCUSDT") == {} and ports.progress(PARTITION) == 5


def test_anomalies_are_kept_per_symbol_once_each() -> None:
    spike = [*random_walk(30), candle(40, 90000.0, 5000.0)]  # a gap and a volume spike
    ports = Ports(Topic())
    driver = driver_on(ports)
    feed(driver, ports, spike)
    feed(driver, ports, spike[-1:])  # re-emitted at a later offset: nothing new
    checkpoint(driver)
    rules = [a["rule"] for a in ports.anomalies(PARTITION, "BTCUSDT")]
    assert {"gap", "volume_zscore"} <= set(rules) and len(rules) == len(set(rules))
    assert all(isinstance(o, IndicatorSnapshot | Anomaly) for o in ports.sent)


def test_a_row_that_is_not_one_starts_its_series_again() -> None:
    """Whoever can write the changelog can put anything in a row."""
    ports = Ports(Topic())
    ports.table[(PARTITION, "BTCUSDT")] = json.dumps({"1m": "garbage", "5m": {"state": {"nope": 1}}})
    ports.write_progress(PARTITION, -1)
    driver = driver_on(ports)
    feed(driver, ports, random_walk(3))
    checkpoint(driver)
    assert state_of(ports)["count"] == 3


def test_a_failed_delivery_forgets_and_the_next_candle_starts_again_from_the_rows() -> None:
    candles = with_symbol(random_walk(20), "ETHUSDT")
    ports = Ports(Topic())
    driver = driver_on(ports)
    feed(driver, ports, candles[:10])
    checkpoint(driver)
    feed(driver, ports, candles[10:15])

    async def fail() -> None:
        raise BrokerError("5 events failed")
    ports.delivered = fail  # type: ignore[method-assign]
    with pytest.raises(BrokerError):
        checkpoint(driver)
    del ports.delivered
    assert driver.series == {} and driver.applied_through == {}
    feed(driver, ports, candles[15:])
    assert ports.reads == [(10, 15)]
    checkpoint(driver)
    assert state_of(ports, "ETHUSDT")["count"] == 20


def test_partitions_moving_during_a_checkpoint_stop_it_before_the_progress_row() -> None:
    ports = Ports(Topic())
    driver = driver_on(ports)
    symbols = [f"S{i:03d}USDT" for i in range(120)]  # more than one slice of rows
    feed(driver, ports, [c for s in symbols for c in with_symbol(random_walk(2), s)])

    async def checkpoint_while_forgetting() -> int:
        task = asyncio.create_task(driver.checkpoint())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        driver.forget()
        return await task
    written = asyncio.run(checkpoint_while_forgetting())
    assert 0 < written < len(symbols) and ports.progress(PARTITION) == -1  # as first written


def test_a_gap_in_what_faust_hands_over_is_read_and_folded() -> None:
    """After a rebalance Faust may hand over records from a stale position and then seek on
    to the committed offset: the records between must not be lost to the series."""
    candles = random_walk(20)
    ports = Ports(Topic())
    driver = driver_on(ports)
    feed(driver, ports, candles[:8])
    for c in candles[8:12]:  # on the topic, never handed to this driver
        offset, ports.values[offset] = ports.topic.append(c)
    feed(driver, ports, candles[12:])
    assert ports.reads == [(8, 12)]
    checkpoint(driver)

    assert state_of(ports) == folded_in_one_go(candles)


def test_records_handed_over_again_change_nothing_and_do_not_move_progress_back() -> None:
    candles = random_walk(10)
    ports = Ports(Topic())
    driver = driver_on(ports)
    feed(driver, ports, candles)
    checkpoint(driver)
    before = state_of(ports)

    async def again() -> None:
        for offset in range(4, 10):
            await driver.on_candle(PARTITION, offset, candles[offset])
    asyncio.run(again())
    checkpoint(driver)
    assert state_of(ports) == before and ports.progress(PARTITION) == 9


def test_the_current_row_shows_what_is_folded_before_the_checkpoint_writes_it() -> None:
    """/indicators reads the owner's memory: the snapshot of the last candle folded, while the
    table's row is still a checkpoint behind; once written, the row is the same."""
    ports = Ports(Topic())
    driver = driver_on(ports)
    walk = random_walk(30)
    feed(driver, ports, walk[:20])
    checkpoint(driver)
    feed(driver, ports, walk[20:])
    current = driver.current_row("BTCUSDT")
    assert current is not None and current["1m"]["latest"]["candle_id"] == ports.queued[-1].candle_id
    assert ports.row(PARTITION, "BTCUSDT")["1m"]["applied"] == [PARTITION, 19]  # the table: a checkpoint behind
    assert current["1m"]["applied"] == [PARTITION, 29]
    checkpoint(driver)
    assert json.loads(json.dumps(current)) == ports.row(PARTITION, "BTCUSDT") == driver.current_row("BTCUSDT")
    assert driver.current_row("ETHUSDT") is None  # nothing of it here: the table answers
