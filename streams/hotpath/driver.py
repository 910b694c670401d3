"""The batched candle fold: the whole contract of the hot path in one place.

The trade reader (streams/hotpath/reader.py) hands each fetched run of market.trades
records to ``CandleDriver``, which

* checks the run follows on from what this partition has applied, else first reads the
  missing trades from market.trades (the gap: a run that failed, or everything since the
  last checkpoint after the memory was forgotten);
* decodes each trade once, checks it (domain/rules/validity.py) and folds it with the pure
  ``CandleFold.evolve`` into its symbol's state, skipping what the state already holds;
* sends the closed candles, marks and late trades at once (folding goes on meanwhile);
* keeps the states in memory and, once per checkpoint interval, when the broker has every
  output sent so far, writes the changed rows as they were then (with each symbol's applied
  offset and its final candles for the history), then the partition's progress row: not
  once per batch, so what a trade costs does not grow with the number of symbols, and
  never a row ahead of its outputs. The fold waits only for the broker: the rows are
  written in slices while it goes on (at most half of the loop's time), a symbol it
  changes first copied as it was (copy on write). Writing rows takes at most
  ``CHECKPOINT_SHARE`` of the time, also while the rows changed grow: when thousands of
  symbols change, checkpoints come less often (a crash then re-reads more of market.trades);
* closes the windows of symbols that have gone quiet, once their partition is read to the end:
  a quiet symbol's clock runs on with wall time, so only windows that have ended close (a
  later trade inside an open one still counts), or, for a recording or a backtest that has
  ended, every window at once (``close_all_when_idle``).

A crash loses at most what came after the last checkpoint: the next owner starts from the
rows and re-reads those trades from market.trades as a gap. Folding is deterministic, so the
candles it publishes again carry the same ids and values. On a rebalance the driver forgets
its memory and starts again from the rows the same way.

The I/O is behind ``CandlePorts`` (the agent's real one, tests' in-memory one), so the
contract is unit-tested in-process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from domain.fold import Position
from domain.market.candle_rows import from_row, to_row
from domain.market.candles import CandleFold, ClosedCandle, Late, SymbolCandles
from domain.market.marks import MarkSlice
from domain.rules.fields import TimeBounds
from streams.errors import OutOfSequence
from streams.hotpath.checkpoint_pace import CheckpointPace
from streams.hotpath.ports import CandlePorts, Folded, Row, Run, sort_output
from streams.hotpath.trade_decoder import TickDecoder
from streams.resilience.deadletter import RawRecord

ROWS_PER_SLICE = 50
"""Rows a checkpoint writes before it lets the fold go on for as long as the slice took (a
few milliseconds each): writing takes at most half of the loop while trades flow."""


QUIET_PER_SLICE = 200
"""Quiet symbols an idle close looks at before it lets the fold go on (a few milliseconds)."""


def wall_clock_us() -> int:
    """Wall time in microseconds since the epoch."""
    return time.time_ns() // 1000


class CandleDriver:
    """Folds runs of trades into candles for the partitions this worker owns."""

    def __init__(self, fold: CandleFold, decoder: TickDecoder, ports: CandlePorts, idle_close_s: float,
                 close_all_when_idle: bool = False, wall_us: Callable[[], int] = wall_clock_us) -> None:
        self.fold = fold
        self.decoder = decoder
        self.ports = ports
        self.idle_close_us = int(idle_close_s * 1_000_000)
        self.close_all_when_idle = close_all_when_idle
        self.wall_us = wall_us
        self.lock = asyncio.Lock()  # the agent and the timers: one at a time
        self.states: dict[str, SymbolCandles] = {}  # ahead of the table by up to one checkpoint
        self.touched_us: dict[str, int] = {}  # symbol -> wall time of its last trade (or of reading its row)
        self.applied_through: dict[int, int] = {}  # partition -> last offset folded
        self.dirty: dict[int, set[str]] = {}  # partition -> symbols changed since the checkpoint
        self._unwritten: set[str] = set()  # symbols whose rows the checkpoint has still to write
        self._copies: dict[str, Row] = {}  # of those, the rows the fold changed since, as they were
        self.generation = 0
        self._loaded_generation = -1  # the generation whose table rows are in memory
        self.last_checkpoint: dict[str, float] = {"rows": 0, "seconds": 0.0, "delivery_wait_s": 0.0}
        self.pace = CheckpointPace()

    def forget(self) -> None:
        """Drop what is in memory (partitions move): start again from the table's rows."""
        self.generation += 1
        self.states.clear()
        self.touched_us.clear()
        self.applied_through.clear()
        self.dirty.clear()
        self._unwritten.clear()
        self._copies.clear()
        self.ports.forget_finals()

    def report(self) -> dict[str, Any]:
        """What /health shows: how far each partition is folded (in memory), the symbols held,
        how often the memory was forgotten and the last checkpoint (rows, seconds writing them,
        seconds waiting for the broker to have every output)."""
        return {"applied_through": {str(p): o for p, o in sorted(self.applied_through.items())},
                "symbols_in_memory": len(self.states), "generation": self.generation,
                "last_checkpoint": self.last_checkpoint}

    def checkpoint_due(self) -> bool:
        """Whether rows have changed and writing them now keeps checkpoints within their
        share of the time (``CHECKPOINT_SHARE``)."""
        return self.pace.due(sum(map(len, self.dirty.values())))

    def state_of(self, symbol: str) -> SymbolCandles | None:
        """The symbol's current state (memory, else its row), None if unknown here."""
        state = self.states.get(symbol)
        if state is None:
            row = self.ports.row(symbol)
            state = from_row(row, self.fold) if row is not None else None
        return state

    async def on_run(self, run: Run, bounds: TimeBounds) -> Folded:
        """Fold ``run`` after whatever is missing before it (OutOfSequence if that cannot be
        found, BrokerError if it cannot be read); what the run gave."""
        async with self.lock:
            generation = self.generation
            applied = self._applied_through(run.partition)
            if run.follows_offset > applied:
                self.ports.gap_found(run.partition)
                ends = await self.ports.end_offsets({run.partition})
                if run.follows_offset >= ends[run.partition]:  # forged: never wait for trades that do not exist
                    raise OutOfSequence(run.follows_offset, applied)
                missed = await self.ports.read(run.partition, applied + 1, run.follows_offset + 1)
                if not missed.offsets:
                    raise OutOfSequence(run.follows_offset, applied)
                await self._fold(missed, bounds, generation)
            return await self._fold(run, bounds, generation)

    def _applied_through(self, partition: int) -> int:
        applied = self.applied_through.get(partition)
        if applied is None:
            applied = self.applied_through[partition] = self.ports.progress(partition)
        return applied

    def _state(self, symbol: str) -> SymbolCandles:
        state = self.states.get(symbol)
        if state is None:
            row = self.ports.row(symbol)
            state = self.states[symbol] = from_row(row, self.fold) if row is not None else SymbolCandles(symbol)
        return state

    async def _fold(self, run: Run, bounds: TimeBounds, generation: int) -> Folded:
        """Fold one run: each record on its own (a bad one is rejected, the rest go on);
        then publish, and remember what was applied once the broker has the outputs. Nothing
        if the memory was forgotten since the run's sequence was checked (``generation``):
        its trades are then read again as the gap before the next run."""
        out = Folded()
        if generation != self.generation:
            return out
        partition, source = run.partition, self.ports.source_topic
        evolve, decode = self.fold.evolve, self.decoder.decode_checked
        last_offset: dict[str, int] = {}
        now_us = self.wall_us()
        now_ms = now_us / 1000
        skip_through = self.applied_through.get(partition, -1)
        unwritten = self._unwritten
        for offset, timestamp_ms, key, value in zip(run.offsets, run.timestamps_ms, run.keys, run.values,
                                                    strict=True):
            if offset <= skip_through:
                continue  # already applied
            try:
                tick = decode(value, timestamp_ms, partition, bounds)
                state = self._state(tick.symbol)
                if state.applied.covers(partition, offset):
                    continue
                if tick.symbol in unwritten:
                    self._copy_unwritten(tick.symbol)
                _, outputs = evolve(state, tick)
            except Exception as error:  # this record only: the rest of the run goes on
                out.rejected.append((RawRecord(source, partition, offset, key, value), error))
                continue
            last_offset[tick.symbol] = offset
            for output in outputs:
                if isinstance(output, Late):
                    out.late.append((RawRecord(source, partition, offset, key, value), tick.symbol))
                else:
                    sort_output(output, out.closed, out.marks)
            out.latencies_s.append(max(0.0, (now_ms - timestamp_ms) / 1000))
        try:
            for record, problem in out.rejected:
                await self.ports.dead_letter(record, problem)
            await self.ports.send(out.closed, out.marks, [record for record, _ in out.late])
        except BaseException:
            self.forget()  # the states hold trades whose outputs may not be out: re-fold them
            raise
        if generation != self.generation:
            return out  # forgotten meanwhile: the next owner folds these trades again
        for symbol, offset in last_offset.items():
            self.states[symbol].applied = Position(partition, offset)
        self.touched_us.update(dict.fromkeys(last_offset, now_us))
        self.dirty.setdefault(partition, set()).update(last_offset)
        if run.offsets:
            self.applied_through[partition] = max(run.offsets[-1], skip_through)
        return out

    async def checkpoint(self) -> int:
        """Once the broker has every output sent so far, write every row changed until then
        as it was then, then its partition's progress row; the rows written. The fold waits
        only for the broker: rows are written ``ROWS_PER_SLICE`` at a time while it goes on.
        If an output was not delivered, forget (the trades since the last checkpoint are
        folded and sent again) and raise; if the memory is forgotten meanwhile (partitions
        move), stop: the next owner starts from the rows written so far."""
        async with self.lock:
            waited = time.perf_counter()
            try:
                await self.ports.delivered()
            except BaseException:
                self.forget()
                raise
            generation = self.generation
            plan = {p: (sorted(symbols), self._applied_through(p)) for p, symbols in self.dirty.items()}
            self._unwritten.update(symbol for symbols, _ in plan.values() for symbol in symbols)
            self.dirty.clear()
            delivery_wait = time.perf_counter() - waited
        try:
            written, spent = await self._write(plan, generation)
        except BaseException:
            self.forget()  # rows the progress rows count on may be unwritten: start again from the table
            raise
        finally:
            self._unwritten.clear()
            self._copies.clear()
        if generation == self.generation:
            self.last_checkpoint = {"rows": written, "seconds": round(spent, 4),
                                    "delivery_wait_s": round(delivery_wait, 4)}
            self.pace.ended(written, spent)
        return written

    async def _write(self, plan: dict[int, tuple[list[str], int]], generation: int) -> tuple[int, float]:
        """Write the planned rows a slice at a time (the fold goes on in between, for as long
        as the slice took), then each partition's progress row; the rows written and the
        seconds spent writing. Stops if the memory is forgotten meanwhile."""
        written, spent = 0, 0.0
        for partition, (symbols, applied_through) in plan.items():
            for at in range(0, len(symbols), ROWS_PER_SLICE):
                if generation != self.generation:
                    return written, spent
                started = time.perf_counter()
                rows, finals = {}, {}
                for symbol in symbols[at:at + ROWS_PER_SLICE]:
                    copied = self._copies.pop(symbol, None)
                    rows[symbol], finals[symbol] = copied if copied is not None else self._unwritten_row(symbol)
                self.ports.write(partition, rows, finals)
                written += len(rows)
                spent += time.perf_counter() - started
                await asyncio.sleep(time.perf_counter() - started)  # the fold goes on, as long again
            if generation != self.generation:
                return written, spent
            self.ports.write_progress(partition, applied_through)
            written += 1
        return written, spent

    def _unwritten_row(self, symbol: str) -> Row:
        """The row of a symbol the checkpoint has still to write, with its final candles."""
        self._unwritten.remove(symbol)
        return to_row(self.states[symbol], self.touched_us[symbol]), self.ports.take_finals(symbol)

    def _copy_unwritten(self, symbol: str) -> None:
        """Before the fold changes a symbol whose row the checkpoint has still to write: keep
        the row as it was (copy on write)."""
        self._copies[symbol] = self._unwritten_row(symbol)

    async def close_idle(self) -> list[ClosedCandle]:
        """Close the windows of symbols with no trade for idle_close_s that have ended on
        their clock run on with wall time (or all of them: ``close_all_when_idle``), once
        their partition is folded to the true end of market.trades (a worker catching up on
        a backlog must not close windows that later records still fill); the candles closed.
        ``QUIET_PER_SLICE`` symbols at a time, the fold going on in between: with thousands
        of symbols, their minutes all end at once."""
        quiet = self._quiet()
        generation = self.generation
        if not quiet:
            return []
        ends = await self.ports.end_offsets({p for _, p in quiet})  # outside the lock: may take seconds
        closed: list[ClosedCandle] = []
        for at in range(0, len(quiet), QUIET_PER_SLICE):
            async with self.lock:
                if generation != self.generation:
                    break
                closed += await self._close_quiet(quiet[at:at + QUIET_PER_SLICE], ends, generation)
            await asyncio.sleep(0)
        return closed

    async def _close_quiet(self, quiet: list[tuple[str, int]], ends: dict[int, int],
                           generation: int) -> list[ClosedCandle]:
        """``close_idle`` for some of the quiet symbols, holding the lock: those still quiet."""
        closed: list[ClosedCandle] = []
        marks: list[MarkSlice] = []
        now_us = self.wall_us()
        cutoff = now_us - self.idle_close_us
        for symbol, partition in quiet:
            touched_us = self.touched_us.get(symbol, now_us)
            if touched_us > cutoff or ends.get(partition, 0) > self._applied_through(partition) + 1:
                continue  # traded since, or trades of its partition still to fold
            state = self.states[symbol]
            if symbol in self._unwritten:
                self._copy_unwritten(symbol)
            done = (self.fold.close_all(state) if self.close_all_when_idle
                    else self.fold.close_quiet(state, now_us - touched_us))
            if done:
                for output in done:
                    sort_output(output, closed, marks)
                self.dirty.setdefault(partition, set()).add(symbol)
        if closed or marks:
            try:
                await self.ports.send(closed, marks, [])
            except BaseException:
                self.forget()
                raise
        return closed if generation == self.generation else []

    def _quiet(self) -> list[tuple[str, int]]:
        """(symbol, partition) of states with open windows and no trade for idle_close_s.
        The table's rows are read into memory once after each start or rebalance (a symbol
        may never trade again); from then on every state with open windows is in memory.

        A symbol read from its row is quiet from now on, not from its last trade before: the
        time no worker folded its partition (a crash, a restart, partitions moving) is not
        the market's quiet. Counted as such, a worker restarted more than idle_close_s after
        the last trade closed every window on its first tick (with ``close_all_when_idle``)
        or the span of the outage, before the trades sent right after its start (by
        producers the same outage held up) had arrived: they were all late."""
        now_us = self.wall_us()
        if self._loaded_generation != self.generation:
            self._loaded_generation = self.generation
            for symbol, row in self.ports.symbol_rows():
                if symbol not in self.states:
                    self.states[symbol] = from_row(row, self.fold)
                    self.touched_us[symbol] = max(now_us, int(row.get("updated_at_us", 0)))
        cutoff = now_us - self.idle_close_us
        return [(symbol, state.applied.partition) for symbol, state in self.states.items()
                if self.touched_us.get(symbol, 0) <= cutoff and any(state.panes.values())]
