"""Parity of two instances over the same range (pure): is what an isolated instance (a
replay, a backtest) published the same as what the live app published, kind by kind?

Events are compared by what they say, not by the cost of saying it: ingest time (when a
worker made the event), token counts, latency and whether an answer came from the cache
are left out; an enrichment's origin stays in (Claude's answer, or the fallback and its
reason). Duplicates with the same id and values count once (delivery is at least once);
the same id with other values is a difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.clock import to_micros
from schemas.records import (
    Anomaly,
    Candle,
    Enrichment,
    EnrichmentSource,
    Event,
    IndicatorSnapshot,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    PlaceOrder,
    PositionChanged,
    TradeSignal,
)

KINDS: dict[str, tuple[tuple[str, tuple[type[Event], ...]], ...]] = {
    "candles": (("market.candles", (Candle,)),),
    "indicators": (("analysis.indicators", (IndicatorSnapshot,)),),
    "anomalies": (("analysis.anomalies", (Anomaly,)),),
    "enrichments": (("analysis.enrichments", (Enrichment,)),),
    "signals": (("trading.signals", (TradeSignal,)),),
    "orders": (("trading.commands", (PlaceOrder,)),),
    "order_events": (("trading.events", (OrderPlaced, OrderDenied, OrderExpired, OrderCanceled)),),
    "fills": (("trading.events", (OrderFilled,)),),
    "positions": (("trading.events", (PositionChanged,)),),
}
"""What is compared: kind -> (topic, the record types of that kind on it). ``orders`` are
the orders the strategy sent; ``order_events`` what the ledger decided about them."""
COST_FIELDS = frozenset({"input_tokens", "output_tokens", "latency_ms", "cache_hit"})
"""Enrichment fields that say what an answer cost, not what it says."""


def comparable(event: Event) -> dict[str, Any]:
    """The fields of an event that parity compares."""
    values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    envelope = dataclasses.asdict(event.envelope)
    envelope.pop("ingest_time", None)
    values["envelope"] = envelope
    values["type"] = type(event).__name__
    if isinstance(event, Enrichment):
        for name in COST_FIELDS:
            values.pop(name, None)
        values["source"] = "FALLBACK" if event.source is EnrichmentSource.FALLBACK else "CLAUDE"
    return values


@dataclass(frozen=True)
class Difference:
    """The first place two sides differ: the position in event-time order and each side's
    event there (None: that side has no more)."""

    index: int
    live: Event | None
    other: Event | None


@dataclass(frozen=True)
class KindReport:
    """One kind compared: how many distinct events each side has, and the first difference."""

    kind: str
    live_count: int
    other_count: int
    difference: Difference | None

    @property
    def equal(self) -> bool:
        """Both sides published the same events."""
        return self.difference is None


def in_range(events: Iterable[Event], start_us: int | None, stop_us: int | None) -> list[Event]:
    """The events whose event time is in [start, stop) (None: unbounded)."""
    return [e for e in events
            if (start_us is None or to_micros(e.envelope.event_time) >= start_us)
            and (stop_us is None or to_micros(e.envelope.event_time) < stop_us)]


def distinct(events: Iterable[Event]) -> list[Event]:
    """One of each (id, values) in event-time order (then id); a second version of an id stays."""
    seen: dict[tuple[str, str], Event] = {}
    for event in events:
        seen.setdefault((event.envelope.event_id, repr(comparable(event))), event)
    return sorted(seen.values(), key=lambda e: (to_micros(e.envelope.event_time), e.envelope.event_id,
                                                repr(comparable(e))))


def compare(kind: str, live: Iterable[Event], other: Iterable[Event]) -> KindReport:
    """Compare one kind's events of both sides (already in range)."""
    left, right = distinct(live), distinct(other)
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else None
        b = right[index] if index < len(right) else None
        if a is None or b is None or comparable(a) != comparable(b):
            return KindReport(kind, len(left), len(right), Difference(index, a, b))
    return KindReport(kind, len(left), len(right), None)
