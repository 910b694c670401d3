"""Load events into topics: a file (validated first) or the synthetic feed, paced."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from streams.ingest import ParsedRow, RejectedRow, read_trades, synthetic_trades
from streams.kafka.producer import EventProducer

Progress = Callable[[int], None]


@dataclass
class LoadReport:
    """What a load did: rows sent and rejected, and how fast."""

    sent: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Rows sent per second."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def scan(rows: Iterable[ParsedRow | RejectedRow]) -> tuple[int, list[RejectedRow]]:
    """Count the good rows and collect the bad ones (first pass over a file)."""
    good = 0
    rejected: list[RejectedRow] = []
    for row in rows:
        if isinstance(row, RejectedRow):
            rejected.append(row)
        else:
            good += 1
    return good, rejected


def write_rejects(rejected: Sequence[RejectedRow], path: Path) -> None:
    """One JSON line per rejected row: line number, reason, raw text."""
    with path.open("w") as out:
        for row in rejected:
            out.write(json.dumps({"line": row.line, "reason": row.reason, "raw": row.raw}) + "\n")


def send_rows(producer: EventProducer, topic: str, rows: Iterable[ParsedRow | RejectedRow],
              progress: Progress | None = None) -> LoadReport:
    """Send the good rows (second pass), flush, and report."""
    report = LoadReport()
    started = time.perf_counter()
    for row in rows:
        if isinstance(row, RejectedRow):
            report.rejected.append(row)
            continue
        producer.send(topic, row.event)
        report.sent += 1
        if progress and report.sent % 1000 == 0:
            progress(1000)
    producer.flush()
    if progress:
        progress(report.sent % 1000)
    report.seconds = time.perf_counter() - started
    return report


def trade_rows(path: Path, fmt: str, symbol: str | None, venue: str) -> Iterator[ParsedRow | RejectedRow]:
    """The rows of a trade file, parsed and validated."""
    return read_trades(path, fmt, symbol=symbol, venue=venue, producer="cli.produce")


def run_synthetic(producer: EventProducer, topic: str, symbols: Sequence[str], *, rate: float,
                  duration: float, seed: int | None = None,
                  progress: Progress | None = None,
                  should_stop: Callable[[], bool] = lambda: False) -> LoadReport:
    """Send the synthetic feed at ``rate`` trades/s of wall time for ``duration`` seconds
    (0: until ``should_stop``). Trade times follow the wall clock."""
    report = LoadReport()
    start = datetime.now(UTC)
    started = time.perf_counter()
    feed = synthetic_trades(symbols, seed=seed, start=start, rate=rate)
    for trade in feed:
        elapsed = time.perf_counter() - started
        if (duration and elapsed >= duration) or should_stop():
            break
        # Pace on the feed's own arrival times, so its bursts and quiet spells survive.
        ahead = (trade.envelope.ingest_time - start).total_seconds() - elapsed
        if ahead > 0.005:
            time.sleep(ahead)
        producer.send(topic, trade)
        report.sent += 1
        if progress and report.sent % 100 == 0:
            progress(100)
    producer.flush()
    report.seconds = time.perf_counter() - started
    return report
