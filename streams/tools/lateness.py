"""Will a file's trades be late? Checked by `ticktide produce` before it sends them.

The candle fold (domain/market/candles.py) judges a trade late when it is older than its symbol's
watermark (the largest trade time seen) less the grace period; a late trade goes to
market.late and into no candle. A recording from 2024 produced into a topic that a live or
synthetic feed keeps at "now" is late as a whole. The watermarks come from the topic
itself (the last records of each partition), not from a worker: they hold whether a worker
runs, lags or starts later, cost one short read, and never overstate lateness (the tail
can only miss a symbol's newest trade, never invent one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from domain.clock import from_micros, to_micros
from schemas.records import Trade
from streams.errors import DecodeError, InvalidValue
from streams.ingest import ParsedRow, RejectedRow
from streams.kafka.admin import end_offsets, list_topics
from streams.kafka.codec import AvroCodec
from streams.kafka.ranges import read_range
from streams.kafka.registry import registry_for
from streams.settings import Settings
from streams.validation import checked

TAIL = 2000
"""Records read from the end of each partition to find its symbols' watermarks."""


def topic_watermarks(settings: Settings, topic: str, tail: int = TAIL) -> dict[str, int]:
    """Each symbol's largest trade time (us) among the last ``tail`` records of each
    partition of ``topic`` (empty if the topic does not exist or holds nothing)."""
    if topic not in list_topics(settings):
        return {}
    ends = list(end_offsets(settings, topic))
    codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
    found: dict[str, int] = {}
    for raw in read_range(settings, topic, [max(0, end - tail) for end in ends], ends):
        try:  # what the worker dead-letters (a trade dated 2999) moves no clock: skipped here too
            trade = checked(codec.decode(raw.value), settings.max_future_skew_s)
        except (DecodeError, InvalidValue):
            continue
        if isinstance(trade, Trade):
            at = to_micros(trade.trade_time)
            found[trade.symbol] = max(at, found.get(trade.symbol, at))
    return found


@dataclass
class LateCount:
    """Counts the trades the fold will find late, given the watermarks before them."""

    watermarks: dict[str, int]
    grace_us: int
    late: Counter[str] = field(default_factory=Counter)
    total: int = 0
    first_us: int | None = None  # the time range of the late trades
    last_us: int | None = None
    behind: dict[str, int] = field(default_factory=dict)  # symbol -> the watermark its first late trade met

    def add(self, symbol: str, time_us: int) -> None:
        """One trade, in the order it is sent."""
        self.total += 1
        watermark = self.watermarks.get(symbol)
        if watermark is not None and time_us < watermark - self.grace_us:
            self.late[symbol] += 1
            self.first_us = time_us if self.first_us is None else min(self.first_us, time_us)
            self.last_us = time_us if self.last_us is None else max(self.last_us, time_us)
            self.behind.setdefault(symbol, watermark)
        elif watermark is None or time_us > watermark:
            self.watermarks[symbol] = time_us

    def watch(self, rows: Iterable[ParsedRow | RejectedRow]) -> Iterator[ParsedRow | RejectedRow]:
        """The rows unchanged, each good trade counted on the way."""
        for row in rows:
            if isinstance(row, ParsedRow) and isinstance(row.event, Trade):
                self.add(row.event.symbol, to_micros(row.event.trade_time))
            yield row

    @property
    def late_total(self) -> int:
        """Trades that will be late."""
        return sum(self.late.values())

    def warning(self, topic: str, file: str, fmt: str) -> list[str]:
        """What to tell the user (nothing when no trade will be late)."""
        if not self.late_total or self.first_us is None or self.last_us is None:
            return []
        first, end = from_micros(self.first_us), from_micros(self.last_us + 1)
        symbols = ", ".join(f"{s} {n} (its watermark {_iso(from_micros(self.behind[s]))})"
                            for s, n in sorted(self.late.items()))
        app = f"rec-{first:%Y%m%d%H%M}"
        return [
            f"warning: {self.late_total} of {self.total} trades are more than the {self.grace_us / 1e6:g} s grace "
            f"behind their symbol's watermark on {topic}: {symbols}. The worker sends them to market.late, "
            "not into candles.",
            "To see their own candles, replay their market time into a new app:",
            f"  ticktide replay --topic {topic} --from {_iso(first)} --to {_iso(end)} --into {app}",
            f"or start a stack fed by this file alone: ticktide dev --feed {file} --format {fmt}",
        ]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
