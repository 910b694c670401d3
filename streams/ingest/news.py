"""The input side of ``ticktide produce market.news``: JSON lines or CSV files of
headlines, and an occasional synthetic headline for the dev feed (pure: no Kafka).

A row has ``headline``, ``source``, ``symbols`` (a JSON list, or text separated by
``;``, ``,`` or spaces), ``time`` (or ``published_time``; ISO-8601 or epoch s/ms/us) and
an optional ``url``. Event ids derive from (source, time, headline): producing the same
file twice gives the same events. A bad row is a RejectedRow naming the field.
"""

from __future__ import annotations

import csv
import random
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.rules.fields import show
from schemas.records import News
from streams.errors import InvalidInput
from streams.ingest.binance import load_json
from streams.ingest.parsed_rows import RejectedRow
from streams.kafka.json_form import parse_time

NEWS_FORMATS = ("jsonl", "csv")
MAX_HEADLINE = 1000
_SYMBOL = re.compile(r"^[A-Z0-9]{2,32}$")
_NAMESPACE = uuid.UUID("c3b1f1e2-6a7d-4c1e-9a55-0d2f7e3b8a41")
_FIELDS = {"headline", "source", "symbols", "time", "published_time", "url"}


@dataclass(frozen=True)
class ParsedNews:
    """A row that became a valid News event."""

    line: int
    event: News


def news_event(headline: str, source: str, symbols: Sequence[str], published: datetime,
               url: str | None = None, producer: str = "cli.produce") -> News:
    """A validated News event with a deterministic id; ValueError naming the bad field."""
    headline, source = " ".join(headline.split()), source.strip()
    names = [s.strip().upper() for s in symbols if s.strip()]
    if not headline or len(headline) > MAX_HEADLINE:
        raise ValueError(f"headline must be 1 to {MAX_HEADLINE} characters, got {show(headline)}")
    if not source or len(source) > 100:
        raise ValueError(f"source must be 1 to 100 characters, got {show(source)}")
    bad = [s for s in names if not _SYMBOL.match(s)]
    if not names or bad:
        raise ValueError(f"symbols must be 1 or more symbols like BTCUSDT, got {show(list(symbols))}")
    event_id = str(uuid.uuid5(_NAMESPACE, f"{source}|{published.isoformat()}|{headline}"))
    return News(envelope=News.envelope_for(event_time=published, producer=producer, event_id=event_id),
                headline=headline, source=source, symbols=names, url=url or None,
                published_time=published)


def _from_fields(data: dict[str, Any], producer: str) -> News:
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    for name in ("headline", "source", "symbols"):
        if not data.get(name):
            raise ValueError(f"missing field: {name}")
    when = data.get("time", data.get("published_time"))
    if when in (None, ""):
        raise ValueError("missing field: time")
    symbols = data["symbols"]
    if isinstance(symbols, str):
        symbols = re.split(r"[;,\s]+", symbols)
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise ValueError(f"symbols must be a list of text, got {show(symbols)}")
    if not isinstance(data["headline"], str) or not isinstance(data["source"], str):
        raise ValueError("headline and source must be text")
    try:
        published = parse_time(when)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"time is not a time: {show(when)}") from None
    return news_event(data["headline"], data["source"], symbols, published, data.get("url"), producer)


def _rows(pairs: Iterable[tuple[int, str, Any]], producer: str) -> Iterator[ParsedNews | RejectedRow]:
    for line, raw, data in pairs:
        try:
            if isinstance(data, ValueError):
                raise data
            if not isinstance(data, dict):
                raise ValueError(f"not a JSON object: {show(raw)}")
            yield ParsedNews(line, _from_fields(data, producer))
        except ValueError as exc:
            yield RejectedRow(line=line, reason=str(exc), raw=raw)


def _jsonl(lines: Iterable[str]) -> Iterator[tuple[int, str, Any]]:
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text:
            try:
                yield number, text, load_json(text)
            except ValueError as exc:
                yield number, text, exc


def _csv(lines: Iterable[str]) -> Iterator[tuple[int, str, Any]]:
    reader = csv.DictReader(lines)
    missing = {"headline", "source", "symbols"} - set(reader.fieldnames or ())
    if missing:
        raise InvalidInput(f"the CSV header must name headline, source, symbols and time; "
                           f"missing {', '.join(sorted(missing))}")
    for row in reader:
        yield reader.line_num, ",".join(str(v) for v in row.values()), {
            k: v for k, v in row.items() if k is not None and v not in (None, "")}


def read_news(path: Path, fmt: str, producer: str = "cli.produce") -> Iterator[ParsedNews | RejectedRow]:
    """The rows of a news file in one of NEWS_FORMATS (InvalidInput for a bad file)."""
    if fmt not in NEWS_FORMATS:
        raise InvalidInput(f"unknown news format {fmt!r}: expected one of {', '.join(NEWS_FORMATS)}")
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as lines:
        first = next((line for line in lines if line.strip()), "").lstrip()
        if first and first.startswith("{") != (fmt == "jsonl"):  # one clear error, not one per row
            other = "csv" if fmt == "jsonl" else "jsonl"
            raise InvalidInput(f"{path} looks like {other.upper()}, not --format {fmt}: pass --format {other}")
        lines.seek(0)
        yield from _rows(_jsonl(lines) if fmt == "jsonl" else _csv(lines), producer)


_TEMPLATES = (
    "{name} rallies as funding rates turn positive",
    "Exchange reports record {name} spot volume",
    "{name} slips after large transfer to exchange wallets",
    "Analysts split on {name} outlook ahead of macro data",
    "Regulator comments on {name} derivatives; market calm",
)


def synthetic_headline(symbols: Sequence[str], when: datetime, rng: random.Random) -> News:
    """One made-up headline about one of ``symbols`` (seeded)."""
    symbol = rng.choice(list(symbols))
    text = rng.choice(_TEMPLATES).format(name=symbol.removesuffix("USDT"))
    return news_event(f"{text} ({when:%H:%M:%S})", "synthetic", [symbol], when, producer="feed.synthetic")
