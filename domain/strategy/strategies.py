"""Strategies: pure functions from a symbol's context and its latest indicators to a wish
to trade. Selected by name (setting ``trading_strategy``); add one by writing a function
``(SymbolContext, IndicatorSnapshot) -> Wish | None`` and registering it in STRATEGIES.

Default, ``ema_cross``: BUY when the fast EMA crosses above the slow EMA, SELL when it
crosses below, strength = |fast - slow| / close x 100 (capped at 1), unless the symbol's
latest enrichment, if it came within the last ENRICHMENT_HOLD snapshots, says the regime
is VOLATILE or raises a blocking risk flag (then it stays out). Informational flags
(overbought/oversold, thin data, unverified news) do not block an EMA cross.
``ema_cross_unfiltered`` is the same without the enrichment filter.

The context is a fold too (``observe_*``): a snapshot at or before the last one applied is
ignored, so a re-delivered snapshot never signals twice. Signal ids derive from the
snapshot id and the strategy, so a replay of the same snapshots gives the same signals.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.clock import to_micros
from schemas.records import Anomaly, Enrichment, IndicatorSnapshot, Regime, Side, TradeSignal

_NAMESPACE = uuid.UUID("c3e8a1f2-5d6b-4a90-8e7c-1b2d3f4a5c6e")
KEEP_ANOMALIES = 20
ENRICHMENT_HOLD = 5
"""Snapshots after which an enrichment no longer filters (its market has moved on)."""
BLOCKING_FLAGS = frozenset({"high_volatility", "volume_spike", "price_gap", "liquidity",
                            "regulatory", "security_incident", "macro_event"})


@dataclass(slots=True)
class SymbolContext:
    """What strategies know about one symbol (JSON-trivial fields)."""

    symbol: str
    last_candle_end_us: int = -1
    last_snapshot_id: str = ""
    ema_diff: float | None = None  # fast - slow EMA at the last snapshot
    regime: str = Regime.UNKNOWN.value
    risk_flags: list[str] = field(default_factory=list)
    enrichment_id: str = ""
    snapshots_since_enrichment: int = 0
    anomalies: list[list[str]] = field(default_factory=list)  # [event_id, rule, candle_id]
    # when to decide (domain.strategy.gate): snapshots waiting for their enrichments
    seen_end_us: int = -1  # candle end of the newest trading snapshot seen
    pending: list[dict[str, Any]] = field(default_factory=list)  # with "since": wall time it came
    expected: list[list[Any]] = field(default_factory=list)  # [event time, subject id] to be enriched
    arrived: list[list[Any]] = field(default_factory=list)  # [time, subject id, enrichment id, regime, flags]
    decided_early: int = 0  # decisions the wall-clock guard made without all their enrichments


@dataclass(frozen=True, slots=True)
class Wish:
    """A strategy's decision to trade, and the ids of the events behind it."""

    side: Side
    strength: float
    reason: str
    cause_ids: list[str]


Strategy = Callable[[SymbolContext, IndicatorSnapshot], Wish | None]


def _cross(context: SymbolContext, snapshot: IndicatorSnapshot, weighed_enrichment: bool) -> Wish | None:
    if snapshot.ema_fast is None or snapshot.ema_slow is None or context.ema_diff is None:
        return None
    diff = snapshot.ema_fast - snapshot.ema_slow
    if context.ema_diff <= 0 < diff:
        side, verb = Side.BUY, "above"
    elif context.ema_diff >= 0 > diff:
        side, verb = Side.SELL, "below"
    else:
        return None
    close = float(snapshot.close)
    strength = min(1.0, abs(diff) / close * 100) if close > 0 else 0.0
    reason = (f"EMA fast {snapshot.ema_fast:.6g} crossed {verb} EMA slow {snapshot.ema_slow:.6g} "
              f"on the {snapshot.interval} candle ending {snapshot.candle_end.isoformat()}")
    causes = [snapshot.envelope.event_id, snapshot.candle_id, context.last_snapshot_id]
    if weighed_enrichment and context.enrichment_id:  # lineage: only what the decision used
        causes.append(context.enrichment_id)
    return Wish(side, strength, reason, causes)


def ema_cross_unfiltered(context: SymbolContext, snapshot: IndicatorSnapshot) -> Wish | None:
    """EMA cross, whatever the regime."""
    return _cross(context, snapshot, weighed_enrichment=False)


def ema_cross(context: SymbolContext, snapshot: IndicatorSnapshot) -> Wish | None:
    """EMA cross, staying out of VOLATILE regimes and blocking risks while the enrichment
    that reported them is recent (default)."""
    recent = bool(context.enrichment_id) and context.snapshots_since_enrichment < ENRICHMENT_HOLD
    if recent and (context.regime == Regime.VOLATILE or BLOCKING_FLAGS.intersection(context.risk_flags)):
        return None
    return _cross(context, snapshot, weighed_enrichment=recent)


STRATEGIES: dict[str, Strategy] = {
    "ema_cross": ema_cross,
    "ema_cross_unfiltered": ema_cross_unfiltered,
}


IGNORE_ENRICHMENTS = frozenset({"ema_cross_unfiltered"})
"""Strategies that never weigh an enrichment (their decisions need not wait for one)."""


def strategy_named(name: str) -> Strategy:
    """The registered strategy; ValueError listing the known names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}") from None


def observe_snapshot(context: SymbolContext, snapshot: IndicatorSnapshot,
                     strategy: Strategy) -> Wish | None:
    """Fold a snapshot into the context (in place); the strategy's wish, if any."""
    end_us = to_micros(snapshot.candle_end)
    if end_us <= context.last_candle_end_us:
        return None
    wish = strategy(context, snapshot)
    context.last_candle_end_us = end_us
    context.last_snapshot_id = snapshot.envelope.event_id
    context.snapshots_since_enrichment += 1
    if snapshot.ema_fast is not None and snapshot.ema_slow is not None:
        context.ema_diff = snapshot.ema_fast - snapshot.ema_slow
    return wish


def observe_enrichment(context: SymbolContext, enrichment: Enrichment) -> None:
    """Remember the symbol's latest regime and risk flags."""
    context.regime = str(enrichment.regime)
    context.risk_flags = list(enrichment.risk_flags)
    context.enrichment_id = enrichment.envelope.event_id
    context.snapshots_since_enrichment = 0


def observe_anomaly(context: SymbolContext, anomaly: Anomaly) -> None:
    """Remember the symbol's recent anomalies (for strategies that use them)."""
    if any(a[0] == anomaly.envelope.event_id for a in context.anomalies):
        return
    context.anomalies = [*context.anomalies, [anomaly.envelope.event_id, anomaly.rule,
                                              anomaly.candle_id]][-KEEP_ANOMALIES:]


def signal_record(snapshot: IndicatorSnapshot, wish: Wish, strategy: str, producer: str,
                  ingest_time: datetime) -> TradeSignal:
    """The TradeSignal of a wish; its id derives from the snapshot and the strategy."""
    snapshot_id = snapshot.envelope.event_id
    return TradeSignal(
        envelope=TradeSignal.envelope_for(
            event_time=snapshot.candle_end, producer=producer, ingest_time=ingest_time,
            event_id=str(uuid.uuid5(_NAMESPACE, f"{snapshot_id}|{strategy}")),
            causation_id=snapshot_id, correlation_id=snapshot.envelope.correlation_id),
        symbol=snapshot.symbol, side=wish.side, strength=wish.strength, strategy=strategy,
        reason=wish.reason, cause_ids=[c for c in wish.cause_ids if c])
