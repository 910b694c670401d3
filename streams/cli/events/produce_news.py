"""`ticktide produce market.news`: headlines from a JSON-lines or CSV file, or a slow
synthetic headline feed (what `make run` uses)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from streams.errors import InvalidInput
from streams.ingest.news import NEWS_FORMATS, ParsedNews, read_news, synthetic_headline
from streams.ingest.parsed_rows import RejectedRow
from streams.kafka.producer import EventProducer
from streams.tools import load

TOPIC = "market.news"
SHOWN_REJECTS = 10


def produce_news_file(producer: EventProducer, file: Path, fmt: str, skip_invalid: bool,
                      rejects: Path | None, console: Console) -> tuple[int, int]:
    """Validate the whole file, then send its good rows: (sent, rejected)."""
    if fmt not in NEWS_FORMATS:
        raise InvalidInput(f"--format for {TOPIC} must be one of {', '.join(NEWS_FORMATS)}, got {fmt!r}")
    rows = list(read_news(file, fmt))
    rejected = [row for row in rows if isinstance(row, RejectedRow)]
    for row in rejected[:SHOWN_REJECTS]:
        console.print(f"{file}:{row.line}: {row.reason}", markup=False, highlight=False)
    if rejected and not skip_invalid:
        console.print(f"{len(rejected)} invalid rows in {file}: nothing sent. "
                      "Fix them, or pass --skip-invalid to send the good rows.")
        raise typer.Exit(1)
    if rejected:
        target = rejects or file.with_name(file.name + ".rejects.jsonl")
        load.write_rejects(rejected, target)
        console.print(f"{len(rejected)} rejected rows written to {target}")
    good = [row.event for row in rows if isinstance(row, ParsedNews)]
    for event in good:
        producer.send(TOPIC, event)
    producer.flush()
    return len(good), len(rejected)


def produce_news_synthetic(producer: EventProducer, symbols: list[str], rate: float, duration: float,
                           seed: int | None, should_stop: Callable[[], bool]) -> int:
    """One headline every 1/rate seconds for ``duration`` seconds (0: until stopped)."""
    rng = random.Random(seed)
    started = time.monotonic()
    sent = 0
    while not should_stop() and not (duration and time.monotonic() - started >= duration):
        producer.send(TOPIC, synthetic_headline(symbols, datetime.now(UTC), rng))
        producer.flush()
        sent += 1
        wake = started + sent / rate
        while time.monotonic() < wake and not should_stop():
            time.sleep(min(0.2, max(0.0, wake - time.monotonic())))
    return sent
