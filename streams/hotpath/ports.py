"""What the candle driver takes in and gives out: runs of market.trades records, what a
run gave, and the I/O it needs (``CandlePorts``: the agent's tables and producer in a
worker, an in-memory fake in the unit tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.market.candles import ClosedCandle, ClosedSlice, Output
from domain.market.marks import MarkSlice, slice_of
from streams.resilience.deadletter import RawRecord


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive market.trades records of one partition and the offset they follow on from."""

    partition: int
    follows_offset: int
    offsets: Sequence[int]
    timestamps_ms: Sequence[int]
    keys: Sequence[bytes | None]
    values: Sequence[bytes | None]


FinalCandle = tuple[str, int, str]
"""A final candle as its history row keeps it, until the symbol's row is written with it:
(interval, window start in us, bar text). A plain tuple of a string, an int and a string, so
Python's collector stops tracking it: with thousands of symbols, tens of thousands wait for
the next checkpoint, and as objects (with their bars) they were half of what each full
collection had to scan."""


def sort_output(output: Output, closed: list[ClosedCandle], marks: list[MarkSlice]) -> None:
    """A final candle to ``closed``, a closed mark slice (as its mark) to ``marks``."""
    if isinstance(output, ClosedSlice):
        marks.append(slice_of(output))
    elif isinstance(output, ClosedCandle):
        closed.append(output)


@dataclass(slots=True)
class Folded:
    """What one run gave: to publish, to dead-letter, and the latency of each folded trade."""

    closed: list[ClosedCandle] = field(default_factory=list)
    late: list[tuple[RawRecord, str]] = field(default_factory=list)  # the record and its symbol
    rejected: list[tuple[RawRecord, Exception]] = field(default_factory=list)
    marks: list[MarkSlice] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)


class CandlePorts(Protocol):
    """The driver's I/O: the candles table, market.trades, the output topics."""

    source_topic: str

    def row(self, symbol: str) -> dict[str, Any] | None:
        """A symbol's row of the candles table."""

    def progress(self, partition: int) -> int:
        """The last offset of a source partition the rows hold (-1: none)."""

    def symbol_rows(self) -> list[tuple[str, dict[str, Any]]]:
        """Every symbol row this worker holds."""

    def take_finals(self, symbol: str) -> list[FinalCandle]:
        """The symbol's final candles sent since its row was last written (they go with it)."""

    def forget_finals(self) -> None:
        """Drop the final candles kept for rows not yet written (the driver forgets its memory:
        the trades after the rows are folded again, by this worker or the next owner, and
        send those candles again)."""

    def write(self, partition: int, rows: dict[str, dict[str, Any]],
              finals: dict[str, list[FinalCandle]]) -> None:
        """Write symbol rows of a source partition, with their final candles."""

    def write_progress(self, partition: int, applied_through: int) -> None:
        """Write a source partition's progress row (after its symbols' rows)."""

    def gap_found(self, partition: int) -> None:
        """A run did not follow on from what was applied: its gap is checked and read."""

    async def read(self, partition: int, start: int, stop: int) -> Run:
        """market.trades[partition] from ``start`` to before ``stop``."""

    async def end_offsets(self, partitions: set[int]) -> dict[int, int]:
        """The end offsets of (at least) these market.trades partitions."""

    async def send(self, closed: list[ClosedCandle], marks: list[MarkSlice], late: list[RawRecord]) -> None:
        """Queue final candles, marks (closed slices) and late trades for the broker."""

    async def delivered(self) -> None:
        """Return once the broker has everything sent; raise if anything was not delivered."""

    async def dead_letter(self, record: RawRecord, error: Exception) -> None:
        """Dead-letter one record."""


Row = tuple[dict[str, Any], list[FinalCandle]]
"""A symbol's table row and its final candles not yet in the history."""
