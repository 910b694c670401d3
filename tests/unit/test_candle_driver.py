"""The batched candle fold's contract, in-process: runs in sequence, gaps read from the
source, checkpoints that write each changed row once, crashes and failed outputs that
neither lose nor double-count a trade, hostile records that cost one record, idle close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from typing import Any

import pytest

from domain.market.bars import Tick
from domain.market.candle_rows import bar_text
from domain.market.candles import CandleFold, ClosedCandle
from domain.market.marks import MarkSlice, mark_id
from domain.market.windows import parse_windows
from streams.errors import OutOfSequence
from streams.hotpath.checkpoint_pace import CHECKPOINT_SHARE, CheckpointPace
from streams.hotpath.driver import CandleDriver
from streams.hotpath.ports import FinalCandle, Run
from streams.hotpath.trade_decoder import TickDecoder
from streams.ingest import synthetic_trades
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry
from streams.resilience.deadletter import RawRecord
from streams.validation import bounds_now
from tests.factories import T0, make_trade
from tests.reference import bar_summary, fold_reference
from tests.unit.test_candles import tick_of

SPECS = parse_windows("1s,1m,5m,5m/1m")
GRACE = 2_000_000
CODEC = AvroCodec(EmbeddedRegistry())
Key = tuple[str, str, int]
PROGRESS = "#progress"


@dataclass
class FakePorts:
    """The driver's I/O in memory: one market.trades partition, the candles table, outputs."""

    log: list[tuple[int, int, bytes | None, bytes | None]]  # market.trades[0]: offset, ts, key, value
    source_topic: str = "market.trades"
    table: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[list[str]] = field(default_factory=list)  # per checkpoint, the rows in the order written
    finals: dict[str, list[FinalCandle]] = field(default_factory=dict)  # sent, not yet with their row
    history: dict[Key, str] = field(default_factory=dict)  # bar texts written with their rows
    published: dict[Key, ClosedCandle] = field(default_factory=dict)
    emits: int = 0
    letters: list[tuple[RawRecord, Exception]] = field(default_factory=list)
    reads: list[tuple[int, int]] = field(default_factory=list)
    fail_publish: bool = False
    fail_write: bool = False
    gaps: int = 0
    marked: list[MarkSlice] = field(default_factory=list)  # marks sent (closed slices)
    pending: list[ClosedCandle] = field(default_factory=list)  # sent, not yet delivered
    on_publish: Any = None  # called before each publish (to move partitions meanwhile)

    def row(self, symbol: str) -> dict[str, Any] | None:
        return self.table.get(symbol)

    def progress(self, partition: int) -> int:
        return int(self.table.get(PROGRESS, {}).get("applied_through", -1))

    def gap_found(self, partition: int) -> None:
        self.gaps += 1

    def symbol_rows(self) -> list[tuple[str, dict[str, Any]]]:
        return [(k, v) for k, v in self.table.items() if not k.startswith("#")]

    def take_finals(self, symbol: str) -> list[FinalCandle]:
        return self.finals.pop(symbol, [])

    def forget_finals(self) -> None:
        self.finals.clear()

    def write(self, partition: int, rows: dict[str, dict[str, Any]], finals: dict[str, list[FinalCandle]]) -> None:
        if self.fail_write:
            raise ConnectionError("store gone")
        if not self.writes or self.writes[-1][-1:] == [PROGRESS]:
            self.writes.append([])
        self.table.update(rows)
        self.writes[-1] += rows
        self.history.update({(symbol, interval, start): text for symbol, candles in finals.items()
                             for interval, start, text in candles})

    def write_progress(self, partition: int, applied_through: int) -> None:
        if not self.writes or self.writes[-1][-1:] == [PROGRESS]:
            self.writes.append([])
        self.table[PROGRESS] = {"applied_through": applied_through}
        self.writes[-1].append(PROGRESS)

    async def read(self, partition: int, start: int, stop: int) -> Run:
        self.reads.append((start, stop))
        return run_of(self.log[start:stop], start - 1)

    async def end_offsets(self, partitions: set[int]) -> dict[int, int]:
        return {0: len(self.log)}

    async def send(self, closed: list[ClosedCandle], marks: list[MarkSlice], late: list[RawRecord]) -> None:
        if self.on_publish is not None:
            self.on_publish()
        self.marked += marks
        self.pending += closed
        for candle in closed:
            self.finals.setdefault(candle.symbol, []).append((candle.interval, candle.bar.start_us,
                                                              bar_text(candle.bar)))

    async def delivered(self) -> None:
        pending, self.pending = self.pending, []
        if self.fail_publish:
            raise ConnectionError("broker gone")
        for candle in pending:
            key = (candle.symbol, candle.interval, candle.bar.start_us)
            assert self.published.get(key, candle) == candle, f"{key} re-emitted with other values"
            self.published[key] = candle
            self.emits += 1

    async def dead_letter(self, record: RawRecord, error: Exception) -> None:
        self.letters.append((record, error))


def run_of(records: Sequence[tuple[int, int, bytes | None, bytes | None]], follows: int) -> Run:
    return Run(0, follows, [r[0] for r in records], [r[1] for r in records], [r[2] for r in records],
               [r[3] for r in records])


def feed(n: int, symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")) -> tuple[list[Any], list[Tick]]:
    """n synthetic trades as market.trades[0] records, and their ticks."""
    trades = list(islice(synthetic_trades(list(symbols), seed=5, start=T0, rate=50, out_of_order_share=0.03), n))
    now_ms = int(time.time() * 1000)
    log = [(i, now_ms, t.symbol.encode(), CODEC.encode(t)) for i, t in enumerate(trades)]
    return log, [tick_of(t) for t in trades]


def driver_for(ports: FakePorts) -> CandleDriver:
    return CandleDriver(CandleFold(SPECS, GRACE, mark_step_us=MARK_STEP), TickDecoder(CODEC), ports, idle_close_s=10.0)


MARK_STEP = 1_000_000


def mark_summaries(ports: FakePorts) -> dict[Key, dict[str, int]]:
    """The marks sent, by symbol and slice (each slice once), in the fields its 1s candle has."""
    summaries: dict[Key, dict[str, int]] = {}
    for mark in ports.marked:
        key = (mark.symbol, "1s", mark.slice_start_us)
        assert key not in summaries, f"{key}: two marks of one slice"
        summaries[key] = {"close": mark.price, "volume": mark.size, "count": mark.count}
    return summaries


def one_second_candles(ticks: list[Tick]) -> dict[Key, dict[str, int]]:
    return {k: {"close": v["close"], "volume": v["volume"], "count": v["count"]}
            for k, v in expected(ticks).items() if k[1] == "1s"}


def expected(ticks: list[Tick]) -> dict[Key, dict[str, int]]:
    reference = fold_reference(ticks, SPECS, GRACE, close_at_end=False)
    return {k: bar_summary(b) for k, b in reference.candles.items()}


def published(ports: FakePorts) -> dict[Key, dict[str, int]]:
    return {k: bar_summary(c.bar) for k, c in ports.published.items()}


async def deliver(driver: CandleDriver, log: list[Any], start: int, stop: int, size: int = 50) -> None:
    """Hand the driver runs of ``log[start:stop]``, then checkpoint (outputs delivered)."""
    for at in range(start, stop, size):
        await driver.on_run(run_of(log[at:min(at + size, stop)], at - 1), bounds_now(300))
    await driver.checkpoint()


def test_runs_give_the_reference_candles_and_a_checkpoint_writes_each_changed_row_once() -> None:
    log, ticks = feed(3000)
    ports = FakePorts(log)
    driver = driver_for(ports)

    async def scenario() -> int:
        for at in range(0, len(log), 50):
            await driver.on_run(run_of(log[at:at + 50], at - 1), bounds_now(300))
        return await driver.checkpoint()

    written = asyncio.run(scenario())
    assert published(ports) == expected(ticks)
    late = fold_reference(ticks, SPECS, GRACE).late
    assert late and mark_summaries(ports) == one_second_candles(ticks)  # a mark per closed slice, all its trades
    assert written == 4 and ports.writes == [["BTCUSDT", "ETHUSDT", "SOLUSDT", PROGRESS]]
    assert ports.progress(0) == len(log) - 1


def test_a_crash_after_a_checkpoint_re_reads_the_rest_and_counts_every_trade_once() -> None:
    log, ticks = feed(3000)
    ports = FakePorts(log)

    async def scenario() -> None:
        first = driver_for(ports)
        await deliver(first, log, 0, 1200)
        for at in range(1200, 2000, 50):  # folded and sent, never checkpointed: lost
            await first.on_run(run_of(log[at:at + 50], at - 1), bounds_now(300))
        await ports.delivered()  # what was sent reached the broker anyway
        second = driver_for(ports)  # a new owner: only the table survives
        await deliver(second, log, 1500, len(log))  # Faust's commit was ahead of the checkpoint

    asyncio.run(scenario())
    assert ports.reads == [(1200, 1500)]  # the gap since the checkpoint, from market.trades
    assert published(ports) == expected(ticks)  # re-emits carry the same values (checked on delivery)
    assert ports.emits > len(ports.published)


@pytest.mark.parametrize("failing", ["fail_publish", "fail_write"])
def test_a_checkpoint_that_fails_leaves_nothing_half_applied(failing: str) -> None:
    """Outputs that were not delivered, or rows that cannot be written: the checkpoint
    forgets the memory (no row is written ahead of its outputs, and no change is left out
    of every checkpoint), so the trades since the last one come back as a gap."""
    log, ticks = feed(2000)
    ports = FakePorts(log)
    driver = driver_for(ports)

    async def scenario() -> None:
        await deliver(driver, log, 0, 600)
        for at in range(600, 850, 50):
            await driver.on_run(run_of(log[at:at + 50], at - 1), bounds_now(300))
        setattr(ports, failing, True)
        with pytest.raises(ConnectionError):
            await driver.checkpoint()
        setattr(ports, failing, False)
        await deliver(driver, log, 850, len(log))

    asyncio.run(scenario())
    assert ports.reads == [(600, 850)]
    assert published(ports) == expected(ticks) and ports.progress(0) == len(log) - 1


def test_a_hostile_record_costs_that_record_only() -> None:
    log, ticks = feed(1000)
    bad = [CODEC.encode(make_trade(symbol="BTCUSDT", trade_time=T0.replace(year=2999))), log[200][3][:20], None]
    for at, value in zip((100, 200, 300), bad, strict=True):
        log[at] = (at, log[at][1], b"BTCUSDT", value)
    kept = [t for i, t in enumerate(ticks) if i not in (100, 200, 300)]
    ports = FakePorts(log)
    asyncio.run(deliver(driver_for(ports), log, 0, len(log)))
    assert [(r.offset, type(e).__name__) for r, e in ports.letters] == [
        (100, "InvalidValue"), (200, "TruncatedRecord"), (300, "TruncatedRecord")]  # 300: a tombstone
    assert published(ports) == expected(kept)


def test_a_run_claiming_trades_that_do_not_exist_is_refused() -> None:
    log, _ = feed(100)
    ports = FakePorts(log)
    forged = run_of([(5000, 0, b"BTCUSDT", log[0][3])], follows=4999)
    with pytest.raises(OutOfSequence):
        asyncio.run(driver_for(ports).on_run(forged, bounds_now(300)))
    assert ports.published == {}


def test_idle_close_waits_for_the_end_of_the_partition() -> None:
    log, ticks = feed(500, symbols=("BTCUSDT",))
    ports = FakePorts(log)
    driver = driver_for(ports)
    driver.idle_close_us, driver.close_all_when_idle = 0, True

    async def scenario() -> tuple[list[ClosedCandle], list[ClosedCandle]]:
        await deliver(driver, log, 0, 400)
        early = await driver.close_idle()  # 100 trades still to fold
        await deliver(driver, log, 400, 500)
        closed = await driver.close_idle()
        await driver.checkpoint()
        return early, closed

    early, closed = asyncio.run(scenario())
    assert early == [] and closed
    everything = fold_reference(ticks, SPECS, GRACE, close_at_end=True)
    assert published(ports) == {k: bar_summary(b) for k, b in everything.candles.items()}


def test_an_illiquid_symbol_loses_no_trade_to_idle_close() -> None:
    """A symbol trading every 25 s, live (the wall clock runs with its trades): idle close
    after 10 s of quiet closes what has ended on the symbol's clock, never a minute that its
    next trade still falls in; after the feed, quiet closes everything in time."""
    gap_s = 25
    trades = [make_trade(symbol="DOGEUSDT", trade_id=i, trade_time=T0 + timedelta(seconds=gap_s * i))
              for i in range(30)]
    now_ms = int(time.time() * 1000)
    log = [(i, now_ms, t.symbol.encode(), CODEC.encode(t)) for i, t in enumerate(trades)]
    ports = FakePorts([])  # market.trades grows as the trades come
    wall_us = [tick_of(trades[0]).time_us]
    driver = CandleDriver(CandleFold(SPECS, GRACE), TickDecoder(CODEC), ports, idle_close_s=10.0,
                          wall_us=lambda: wall_us[0])

    async def quiet_for(seconds: int) -> None:
        for _ in range(seconds):
            wall_us[0] += 1_000_000
            await driver.close_idle()

    async def scenario() -> None:
        for at in range(len(log)):
            ports.log.append(log[at])
            await driver.on_run(run_of(log[at:at + 1], at - 1), bounds_now(300))
            await quiet_for(gap_s)
        await quiet_for(6 * 60)  # the feed has ended: every window's end passes
        await driver.checkpoint()

    asyncio.run(scenario())
    everything = fold_reference([tick_of(t) for t in trades], SPECS, GRACE, close_at_end=True)
    assert driver.states["DOGEUSDT"].late == 0
    assert published(ports) == {k: bar_summary(b) for k, b in everything.candles.items()}


def test_a_trade_is_folded_while_thousands_of_quiet_symbols_close() -> None:
    """The idle close of a whole exchange's quiet symbols (their minutes all end at once)
    lets the fold go on between slices: a trade that comes meanwhile does not wait for all
    of them. Every quiet symbol's second closes; the one that traded meanwhile is no longer
    quiet, and its second stays open for the trades of its grace."""
    symbols = [f"SYM{n}USDT" for n in range(1000)]
    trades = [make_trade(symbol=symbol, trade_id=i, trade_time=T0 + timedelta(milliseconds=i))
              for i, symbol in enumerate(symbols)]
    later = make_trade(symbol=symbols[-1], trade_id=len(trades), trade_time=T0 + timedelta(seconds=1, milliseconds=500))
    now_ms = int(time.time() * 1000)
    log = [(i, now_ms, t.symbol.encode(), CODEC.encode(t)) for i, t in enumerate([*trades, later])]
    ports = FakePorts(log[:-1])
    wall_us = [tick_of(trades[-1]).time_us]
    driver = CandleDriver(CandleFold(SPECS, GRACE), TickDecoder(CODEC), ports, idle_close_s=10.0,
                          wall_us=lambda: wall_us[0])

    async def scenario() -> bool:
        await driver.on_run(run_of(log[:-1], -1), bounds_now(300))
        wall_us[0] += 20_000_000  # 20 s of quiet for every symbol
        closing = asyncio.create_task(driver.close_idle())
        await asyncio.sleep(0)  # the idle close has begun
        ports.log.append(log[-1])
        await driver.on_run(run_of(log[-1:], len(log) - 2), bounds_now(300))
        folded_while_closing = not closing.done()
        await closing
        await driver.checkpoint()
        return folded_while_closing

    assert asyncio.run(scenario())
    seconds = {(t.symbol, "1s", tick_of(t).time_us // 1_000_000 * 1_000_000) for t in trades[:-1]}
    assert {key for key in ports.published if key[1] == "1s"} == seconds


def test_partitions_moving_while_a_run_is_folded_lose_nothing() -> None:
    log, ticks = feed(3000)
    ports = FakePorts(log)
    driver = driver_for(ports)
    moves = iter([False] * 7 + [True, True] + [False] * 1000)  # the second: while the gap is folded

    def maybe_move() -> None:
        if next(moves):
            driver.forget()  # as a rebalance does, between a run's gap and the run, or mid-run

    async def scenario() -> None:
        await deliver(driver, log, 0, 900)
        ports.on_publish = maybe_move
        await deliver(driver, log, 900, len(log))

    asyncio.run(scenario())
    assert ports.gaps >= 2
    assert published(ports) == expected(ticks)


def test_candles_sent_before_partitions_moved_are_not_kept_for_rows_this_worker_no_longer_writes() -> None:
    """Moved away, a partition's final candles waiting for their rows are dropped (the new
    owner re-folds and sends them); kept, each re-folded candle waits once, not once a move."""
    log, ticks = feed(3000)
    ports = FakePorts(log)
    driver = driver_for(ports)

    async def scenario() -> None:
        await deliver(driver, log, 0, 900)
        for _ in range(3):  # a move, and the partitions come back before the next checkpoint
            for at in range(900, 1500, 50):
                await driver.on_run(run_of(log[at:at + 50], at - 1), bounds_now(300))
            assert ports.finals
            driver.forget()
            assert not ports.finals and not driver.states
        for at in range(900, 1500, 50):
            await driver.on_run(run_of(log[at:at + 50], at - 1), bounds_now(300))
        waiting = [(symbol, final[:2]) for symbol, finals in ports.finals.items() for final in finals]
        assert len(waiting) == len(set(waiting))
        await deliver(driver, log, 1500, len(log))

    asyncio.run(scenario())
    assert published(ports) == expected(ticks)
    assert set(ports.history) == set(ports.published)


@pytest.mark.parametrize("sizes", [(1, 50), (7, 333), (50, 1000)])
def test_marks_hold_whole_slices_however_the_trades_were_fetched(sizes: tuple[int, int]) -> None:
    """A live worker and a backtest fetch the same trades in other runs: the marks (what
    fills derive from, ids included) are the same, one per closed slice with all its trades."""
    log, ticks = feed(1500)
    sent = []
    for size in sizes:
        ports = FakePorts(log)
        asyncio.run(deliver(driver_for(ports), log, 0, len(log), size))
        assert mark_summaries(ports) == one_second_candles(ticks)
        sent.append(sorted((mark_id(m), m.time_us, m.trade_id, m.price, m.size) for m in ports.marked))
    assert sent[0] == sent[1] and len(sent[0]) > 50


def test_checkpoints_take_at_most_their_share_of_the_time_with_thousands_of_symbols() -> None:
    """With over a thousand symbols changed, a checkpoint writes every changed row once; the
    next one is due only once its rows, at what a row cost, are at most their share of the
    time since (CHECKPOINT_SHARE), and not at all while no row has changed."""
    symbols = [f"SYM{n}USDT" for n in range(3000)]
    log, _ = feed(12000, symbols)
    ports = FakePorts(log)
    driver = driver_for(ports)

    async def fold(start: int, stop: int) -> None:
        for at in range(start, stop, 500):
            await driver.on_run(run_of(log[at:at + 500], at - 1), bounds_now(300))

    now_s = [0.0]
    driver.pace = CheckpointPace(clock=lambda: now_s[0])  # time moves only when the test says so
    asyncio.run(fold(0, 6000))
    asyncio.run(driver.checkpoint())
    rows, writing_s = driver.report()["last_checkpoint"]["rows"], driver.report()["last_checkpoint"]["seconds"]
    assert rows == len(ports.writes[0]) > 1000
    asyncio.run(fold(6000, 12000))  # the same symbols change again
    changed = sum(map(len, driver.dirty.values()))
    allowed_s = changed * writing_s / rows / CHECKPOINT_SHARE  # writing their rows then takes the share
    assert not driver.checkpoint_due()
    now_s[0] += 0.8 * allowed_s
    assert not driver.checkpoint_due()
    now_s[0] += 0.45 * allowed_s
    assert driver.checkpoint_due()
    asyncio.run(driver.checkpoint())
    now_s[0] += 3600.0
    assert not driver.checkpoint_due()  # nothing changed since


def test_the_fold_goes_on_while_a_checkpoint_writes_and_no_row_gets_ahead_of_its_outputs() -> None:
    """A checkpoint of a thousand symbols writes its rows a slice at a time and lets runs be
    folded in between. The rows it writes are as they were when the broker had every output
    (a symbol the fold changes meanwhile is copied first): no row or history entry holds a
    trade whose outputs were not delivered, and a new owner starting from these rows, after
    the outputs sent meanwhile were lost, publishes exactly the reference candles."""
    symbols = [f"SYM{n}USDT" for n in range(1000)]
    log, ticks = feed(8000, symbols)
    ports = FakePorts(log)
    written_during: list[int] = []

    async def scenario() -> None:
        first = driver_for(ports)
        for at in range(0, 4000, 500):
            await first.on_run(run_of(log[at:at + 500], at - 1), bounds_now(300))
        checkpoint = asyncio.create_task(first.checkpoint())
        for at in range(4000, 6000, 500):  # folded while the checkpoint writes
            await asyncio.sleep(0)
            await first.on_run(run_of(log[at:at + 500], at - 1), bounds_now(300))
            written_during.append(len(ports.writes[-1]) if ports.writes else 0)
        await checkpoint
        assert ports.progress(0) == 3999
        assert all(row["source_offset"] <= 3999 for _, row in ports.symbol_rows())  # none ahead of the checkpoint
        assert set(ports.history) <= set(ports.published)  # history only of delivered candles
        ports.pending.clear()  # the outputs sent meanwhile are lost with the worker
        second = driver_for(ports)  # a new owner: only the table survives
        await deliver(second, log, 4000, len(log), 500)

    asyncio.run(scenario())
    assert 0 < written_during[0] < len(ports.writes[0]) - 1  # the fold ran between the slices
    assert published(ports) == expected(ticks)

