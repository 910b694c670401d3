"""The analysis driver: final candles -> indicators and anomalies, held in memory and
checkpointed, as the candle driver does for trades.

The analysis agent (agents/analysis.py) hands each decoded, checked market.candles record
to ``AnalysisDriver.on_candle``, which

* the first time it sees a partition after a start or a rebalance, folds again the candles
  the partition's rows do not hold, from its progress row up to this candle (what a worker
  folded, and Faust committed, after its last checkpoint). A partition without a progress
  row (a new one, or rows that versions before this one wrote for every candle) holds
  everything before the first candle Faust hands over: its progress row is written then;
* steps the series' fold (``domain.analysis.series``) on its state in memory (read from its row
  once) unless the candle's interval is not analysed, and queues the outputs for the broker
  without waiting; an output that cannot be encoded raises before anything is sent, with
  the state as it was;
* at a checkpoint (``CheckpointPace``), once the broker has every output sent so far,
  writes the changed rows (the series' states and latest snapshots, the symbols' recent
  anomalies) and then each partition's progress row: never a row ahead of its outputs.

A crash loses what came after the last checkpoint: the next owner folds those candles again,
and as the fold is deterministic and its ids derive from the candle, what it sends again is
the same events. Before this driver every candle waited for the broker and had its symbol's
row written through Faust: ~190 candles a second on the embedded broker. The I/O is behind
``AnalysisPorts`` (the agent's tables and producer, or the tests' in-memory fake).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from domain.analysis.series import Analysis, AnalysisInput, Output, SeriesState, series_entry, series_from_entry
from domain.fold import step
from schemas.records import Anomaly, Candle, IndicatorSnapshot, utc_now
from streams.errors import TickTideError, TransientError
from streams.hotpath.checkpoint_pace import CheckpointPace
from streams.kafka.json_form import event_to_json

log = logging.getLogger(__name__)

KEEP_ANOMALIES = 200
"""Recent anomalies kept in a symbol's row."""
ROWS_PER_SLICE = 50
"""Rows a checkpoint writes before it lets the rest of the worker go on for as long as the
slice took: writing takes at most half of the loop (the analysis waits meanwhile)."""

Series = tuple[str, str]
"""(symbol, interval)."""


class AnalysisPorts(Protocol):
    """The driver's I/O: the indicators and anomalies tables, market.candles, the output topics."""

    def progress(self, partition: int) -> int | None:
        """The last market.candles offset the partition's rows hold; None without a progress row."""

    def row(self, partition: int, symbol: str) -> dict[str, Any]:
        """The symbol's indicators row ({interval: entry}; empty without one)."""

    def anomalies(self, partition: int, symbol: str) -> list[dict[str, Any]]:
        """The symbol's recent anomalies as JSON, oldest first."""

    async def read(self, partition: int, start: int, stop: int) -> list[tuple[int, bytes | None]]:
        """(offset, value) of the partition's market.candles records from start to before stop."""

    def send(self, outputs: Sequence[Output]) -> None:
        """Queue the outputs for their topics; raise before queueing any if one cannot be encoded."""

    async def delivered(self) -> None:
        """Return once the broker has every output and row queued so far; BrokerError if one failed."""

    def write(self, partition: int, rows: dict[str, dict[str, Any]],
              anomalies: dict[str, list[dict[str, Any]]]) -> None:
        """Write symbols' indicators rows and anomaly rows."""

    def write_progress(self, partition: int, applied_through: int) -> None:
        """Write the partition's progress row (after its symbols' rows)."""


class AnalysisDriver:
    """Folds the final candles of the market.candles partitions this worker owns."""

    def __init__(self, fold: Analysis, ports: AnalysisPorts, decode: Callable[[bytes | None], Candle],
                 intervals: Collection[str], clock: Callable[[], datetime] = utc_now) -> None:
        """``decode``: a record's value to a checked Candle (raises for anything else);
        ``intervals``: the intervals analysed (the others' candles are read and passed over)."""
        self.fold = fold
        self.ports = ports
        self.decode = decode
        self.intervals = intervals
        self.clock = clock
        self.lock = asyncio.Lock()  # the agent and the checkpoint timer: one at a time
        self.pace = CheckpointPace()
        self.generation = 0
        self.rows: dict[str, dict[str, Any]] = {}  # symbol -> its row as read, with the entries written since
        self.series: dict[Series, SeriesState] = {}  # ahead of the rows by up to one checkpoint
        self.latest: dict[Series, IndicatorSnapshot] = {}  # snapshots not yet in a row
        self.recent: dict[str, list[dict[str, Any]]] = {}  # symbol -> its recent anomalies (read once)
        self.applied_through: dict[int, int] = {}  # partition -> the last offset folded
        self.written_through: dict[int, int] = {}  # partition -> its progress row as last written
        self.changed: dict[int, set[Series]] = {}  # partition -> series changed since the checkpoint
        self.found: dict[int, set[str]] = {}  # partition -> symbols with new anomalies since

    def forget(self) -> None:
        """Drop what is in memory (partitions move): start again from the rows."""
        self.generation += 1
        for held in (self.rows, self.series, self.latest, self.recent, self.applied_through,
                     self.written_through, self.changed, self.found):
            held.clear()

    async def on_candle(self, partition: int, offset: int, candle: Candle) -> None:
        """Fold one market.candles record, after what is missing before it: what the
        partition's rows miss when it is new here, or a gap in what Faust delivers (after a
        rebalance Faust may hand over records from a stale position, then seek on to the
        committed offset: the records between were folded by the last owner, not here)."""
        async with self.lock:
            while (through := self.applied_through.get(partition)) is None or offset > through + 1:
                if through is None:  # again if forgotten meanwhile
                    await self._catch_up(partition, offset)
                elif await self._fold_again(partition, through + 1, offset):
                    log.info("analysis: market.candles[%d] %d..%d not handed over here: read and folded",
                             partition, through + 1, offset - 1)
                    self.applied_through[partition] = offset - 1
            self._apply(partition, offset, candle)
            self.applied_through[partition] = max(offset, through)

    async def _catch_up(self, partition: int, offset: int) -> None:
        """Fold what the partition's rows do not hold before ``offset`` (see the module's doc);
        the partition counts as folded up to there only once all of it is."""
        generation = self.generation
        through = self.ports.progress(partition)
        if through is None:
            self.ports.write_progress(partition, offset - 1)
            await self.ports.delivered()
        elif through + 1 < offset and not await self._fold_again(partition, through + 1, offset):
            return
        if generation == self.generation:
            self.applied_through[partition] = offset - 1
            self.written_through[partition] = offset - 1 if through is None else through

    async def _fold_again(self, partition: int, start: int, stop: int) -> bool:
        """Read the partition's records from ``start`` to before ``stop`` and fold them (what
        a series already holds is skipped); False, folding nothing, if the memory was
        forgotten while they were read. A record that does not decode, or that the fold or
        its outputs' contract refuses, failed the same way when it was first read (and was
        dead-lettered then); anything else (a store or broker failure) is raised."""
        generation = self.generation
        records = await self.ports.read(partition, start, stop)
        if generation != self.generation:
            return False
        for at, value in records:
            try:
                candle = self.decode(value)
            except Exception:  # whatever a broken producer wrote: see the docstring
                continue
            try:
                self._apply(partition, at, candle)
            except TransientError:
                raise
            except (ValueError, ArithmeticError, TickTideError):
                continue
        return True

    def _apply(self, partition: int, offset: int, candle: Candle) -> None:
        if candle.interval in self.intervals:
            series = (candle.symbol, candle.interval)
            state = self.series.get(series) or self._load(partition, series)
            before, held = state.indicators, state.applied
            state, outputs = step(self.fold.evolve, state, AnalysisInput(candle, self.clock()), partition, offset)
            try:
                self.ports.send(outputs)
            except BaseException:
                state.indicators, state.applied = before, held
                raise
            if state.applied != held:
                self.changed.setdefault(partition, set()).add(series)
            for output in outputs:
                if isinstance(output, Anomaly):
                    self._remember(partition, output)
                else:
                    self.latest[series] = output

    def _load(self, partition: int, series: Series) -> SeriesState:
        symbol, interval = series
        row = self.rows.get(symbol)
        if row is None:
            row = self.rows[symbol] = self.ports.row(partition, symbol)
        state = self.series[series] = series_from_entry(row.get(interval))
        return state

    def _remember(self, partition: int, anomaly: Anomaly) -> None:
        recent = self.recent.get(anomaly.symbol)
        if recent is None:
            recent = self.recent[anomaly.symbol] = self.ports.anomalies(partition, anomaly.symbol)
        if all(a["envelope"]["event_id"] != anomaly.envelope.event_id for a in recent):
            recent.append(event_to_json(anomaly))
            del recent[:-KEEP_ANOMALIES]
            self.found.setdefault(partition, set()).add(anomaly.symbol)

    def checkpoint_due(self) -> bool:
        """Whether rows have changed and writing them now keeps within ``CHECKPOINT_SHARE``."""
        moved = sum(self.applied_through[p] != self.written_through.get(p) for p in self.applied_through)
        return self.pace.due(sum(map(len, self.changed.values())) + sum(map(len, self.found.values())) + moved)

    async def checkpoint(self) -> int:
        """Once the broker has every output sent so far, write the rows changed since the
        last checkpoint, then each partition's progress row; the rows written. The analysis
        waits meanwhile (the rest of the worker goes on between slices of rows). If an
        output was not delivered, forget and raise; if the memory is forgotten meanwhile
        (partitions move), stop: the next owner starts from the rows written so far."""
        async with self.lock:
            generation = self.generation
            try:
                await self.ports.delivered()
                written, spent = await self._write(generation)
            except BaseException:
                self.forget()  # outputs or rows may be lost: fold again from what the table has
                raise
            if generation == self.generation:
                self.pace.ended(written, spent)
            return written

    async def _write(self, generation: int) -> tuple[int, float]:
        written, spent = 0, 0.0
        for partition, through in list(self.applied_through.items()):
            changed, found = self.changed.pop(partition, set()), self.found.pop(partition, set())
            intervals: dict[str, list[str]] = {}
            for symbol, interval in changed:
                intervals.setdefault(symbol, []).append(interval)
            symbols = sorted(intervals.keys() | found)
            for at in range(0, len(symbols), ROWS_PER_SLICE):
                started = time.perf_counter()
                part = symbols[at:at + ROWS_PER_SLICE]
                self.ports.write(partition, {s: self._row(s, intervals[s]) for s in part if s in intervals},
                                 {s: list(self.recent[s]) for s in part if s in found})
                written += len(part)
                spent += time.perf_counter() - started
                await asyncio.sleep(time.perf_counter() - started)  # the rest goes on, as long again
                if generation != self.generation:
                    return written, spent
            if through != self.written_through.get(partition):
                self.ports.write_progress(partition, through)
                self.written_through[partition] = through
                written += 1
        return written, spent

    def current_row(self, symbol: str) -> dict[str, Any] | None:
        """The symbol's indicators row as the next checkpoint will write it (the table's is
        behind by up to one checkpoint); None if nothing of it is held here (the table's row,
        if any, is then current)."""
        row = self.rows.get(symbol)  # read before any of its series is folded here
        if row is None:
            return None
        current = dict(row)
        for interval in self.intervals:
            series = (symbol, interval)
            entry = self._entry(series, self.latest.get(series))
            if entry is not None:
                current[interval] = entry
        return current or None

    def _row(self, symbol: str, intervals: list[str]) -> dict[str, Any]:
        """The symbol's row with the entries of its changed series brought up to date (a copy:
        a store in memory keeps what it is given)."""
        row = self.rows[symbol]
        for interval in intervals:
            series = (symbol, interval)
            entry = self._entry(series, self.latest.pop(series, None))
            if entry is not None:
                row[interval] = entry
        return dict(row)

    def _entry(self, series: Series, snapshot: IndicatorSnapshot | None) -> dict[str, Any] | None:
        """A series' entry in its symbol's row, with ``snapshot`` as its latest if there is one
        not yet written (None: nothing of the series folded)."""
        state = self.series.get(series)
        if state is None or state.indicators is None:
            return None
        entry = self.rows[series[0]].get(series[1])
        latest = (event_to_json(snapshot) if snapshot
                  else entry.get("latest") if isinstance(entry, dict) else None)
        return series_entry(state.indicators, state.applied, latest)
