"""Why did we trade? The causal chain of an order, from causation ids and cause ids:
order events <- PlaceOrder <- TradeSignal <- indicators / anomalies / enrichment <- candle
<- the trades (their offsets in market.trades)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from schemas.records import Candle, Event, IndicatorSnapshot, PlaceOrder, Trade, TradeSignal
from streams.errors import DecodeError, InvalidInput
from streams.kafka.codec import AvroCodec
from streams.kafka.ranges import read_all
from streams.kafka.registry import registry_for
from streams.settings import Settings

SOURCES = ("trading.commands", "trading.signals", "analysis.indicators", "analysis.anomalies",
           "analysis.enrichments", "market.candles")


@dataclass(frozen=True)
class Found:
    """An event and where it is stored."""

    topic: str
    partition: int
    offset: int
    event: Event

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def _scan(settings: Settings, codec: AvroCodec, topic: str) -> Iterator[Found]:
    for raw in read_all(settings, settings.topic_prefix + topic):
        try:
            yield Found(topic, raw.partition, raw.offset, codec.decode(raw.value))
        except DecodeError:
            continue


def _describe(event: Event) -> str:
    kind = type(event).__name__
    fields: dict[str, Any] = {k: getattr(event, k) for k in getattr(event, "__dataclass_fields__", {})
                              if k != "envelope"}
    keep = ("symbol", "side", "quantity", "fill_quantity", "fill_price", "fee", "reason_code", "reason",
            "strategy", "strength", "interval", "rule", "value", "regime", "risk_flags", "close",
            "ema_fast", "ema_slow", "window_start", "window_end", "trade_count", "command", "accepted")
    shown = ", ".join(f"{k}={fields[k]}" for k in keep if k in fields and fields[k] is not None)
    return f"{kind} {event.envelope.event_id} ({shown})"


def explain(settings: Settings, order_id: str) -> list[str]:
    """The causal chain of an order, as indented lines; InvalidInput if unknown."""
    codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
    lifecycle = [f for f in _scan(settings, codec, "trading.events") if getattr(f.event, "order_id", None) == order_id]
    if not lifecycle:
        raise InvalidInput(f"no order {order_id!r} on trading.events")
    index: dict[str, Found] = {}
    for topic in SOURCES:
        for found in _scan(settings, codec, topic):
            index[found.event.envelope.event_id] = found
    lines = [f"order {order_id}:"]
    lines += [f"  {_describe(f.event)}  [{f.where}]" for f in lifecycle]
    seen: set[str] = set()

    def walk(event_id: str | None, depth: int) -> None:
        if not event_id or event_id in seen:
            return
        seen.add(event_id)
        found = index.get(event_id)
        pad = "  " * depth
        if found is None:
            lines.append(f"{pad}<- {event_id} (not found in {', '.join(SOURCES)})")
            return
        lines.append(f"{pad}<- {_describe(found.event)}  [{found.where}]")
        event = found.event
        causes: list[str | None] = [event.envelope.causation_id]
        if isinstance(event, PlaceOrder):
            causes.append(event.signal_id)
        if isinstance(event, TradeSignal):
            causes += event.cause_ids
        if isinstance(event, IndicatorSnapshot):
            causes.append(event.candle_id)
        for cause in dict.fromkeys(causes):
            walk(cause, depth + 1)
        if isinstance(event, Candle):
            lines.append(f"{pad}  <- trades {event.first_trade_id}..{event.last_trade_id} of {event.symbol}: "
                         + _trade_offsets(settings, codec, event))

    walk(lifecycle[0].event.envelope.causation_id, 1)
    return lines


def _trade_offsets(settings: Settings, codec: AvroCodec, candle: Candle) -> str:
    """Where the candle's trades are in market.trades (partition@first..last offset)."""
    found: dict[int, list[int]] = {}
    key = candle.symbol.encode()
    for raw in read_all(settings, settings.topic_prefix + "market.trades"):
        if raw.key != key:
            continue
        try:
            trade = codec.decode(raw.value)
        except DecodeError:
            continue
        if isinstance(trade, Trade) and candle.window_start <= trade.trade_time < candle.window_end \
                and candle.first_trade_id <= trade.trade_id <= candle.last_trade_id:
            found.setdefault(raw.partition, []).append(raw.offset)
    if not found:
        return "not found in market.trades"
    return ", ".join(f"market.trades[{p}]@{min(o)}..{max(o)} ({len(o)} trades)" for p, o in sorted(found.items()))
