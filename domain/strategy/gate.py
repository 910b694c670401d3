"""When the strategy decides, and on which enrichment (pure): the same whatever the order
in which indicators and enrichments arrive (live, or a replay of one topic after another).

A snapshot of the trading interval ending at T is decided with the enrichment in force at
T: the newest (by its subject's event time) of the symbol's enrichments whose subject is
in [T - hold, T), a blocking one first at equal times. Which subjects get an enrichment is
known from the snapshots alone (a due snapshot, ``snapshot_due``, and the anomalies a
snapshot names in ``anomaly_ids``), so the decision waits until each of those in the
window has arrived; snapshots are decided in their order. Only a wall-clock guard
(``wait_s``, for an enrichment that never comes) can decide earlier, and it is counted
(``SymbolContext.decided_early``). News enrichments are not weighed: nothing in the
symbol's own inputs says whether a headline is coming.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.clock import from_micros, to_micros
from domain.enrich.context import snapshot_due
from domain.market.windows import parse_window
from domain.strategy.strategies import BLOCKING_FLAGS, ENRICHMENT_HOLD, Strategy, SymbolContext, Wish, observe_snapshot
from schemas.records import Enrichment, Envelope, IndicatorSnapshot, Priority, Regime

WEIGHED_SUBJECTS = frozenset({"Anomaly", "IndicatorSnapshot"})
MAX_ENTRIES = 5_000
"""Most expected subjects and arrived enrichments kept per symbol (a guard: the window trims them)."""


@dataclass(frozen=True, slots=True)
class GatePlan:
    """What the enrichment agent enriches, and how the strategy weighs it."""

    trading_interval: str
    enrich_snapshots: bool = True
    enrich_anomalies: bool = True
    snapshot_interval: str = "1m"
    snapshot_every_s: float = 300.0
    wait_s: float = 120.0
    weighs: bool = True  # False for a strategy that ignores enrichments: it never waits

    @property
    def hold_us(self) -> int:
        """How far back (event time) an enrichment still weighs: ENRICHMENT_HOLD snapshots."""
        return ENRICHMENT_HOLD * parse_window(self.trading_interval).step_us


def expected_subjects(snapshot: IndicatorSnapshot, plan: GatePlan) -> list[list[Any]]:
    """[event time, subject id] of each enrichment this snapshot tells will come."""
    at = to_micros(snapshot.candle_end)
    found = []
    if plan.enrich_snapshots and snapshot_due(snapshot, plan.snapshot_interval, plan.snapshot_every_s):
        found.append([at, snapshot.envelope.event_id])
    if plan.enrich_anomalies:
        found += [[at, anomaly_id] for anomaly_id in snapshot.anomaly_ids]
    return found


def gated_snapshot(context: SymbolContext, snapshot: IndicatorSnapshot, strategy: Strategy,
                   plan: GatePlan, now: float) -> list[tuple[IndicatorSnapshot, Wish]]:
    """Fold a snapshot (of any interval) into the context; the decisions now due, in order."""
    known = {entry[1] for entry in context.expected}
    context.expected += [e for e in expected_subjects(snapshot, plan) if e[1] not in known]
    end_us = to_micros(snapshot.candle_end)
    if snapshot.interval == plan.trading_interval and end_us > context.seen_end_us:
        context.seen_end_us = end_us
        context.pending.append({**snapshot_row(snapshot), "since": now})
    return _release(context, strategy, plan, now)


def gated_enrichment(context: SymbolContext, enrichment: Enrichment, strategy: Strategy,
                     plan: GatePlan, now: float) -> list[tuple[IndicatorSnapshot, Wish]]:
    """Fold an enrichment into the context; the decisions now due, in order."""
    if enrichment.subject_type in WEIGHED_SUBJECTS:
        subject = enrichment.subject_event_id
        context.arrived = [a for a in context.arrived if a[1] != subject] + [[
            to_micros(enrichment.envelope.event_time), subject, enrichment.envelope.event_id,
            str(enrichment.regime), sorted(enrichment.risk_flags)]]
    return _release(context, strategy, plan, now)


def _release(context: SymbolContext, strategy: Strategy, plan: GatePlan,
             now: float) -> list[tuple[IndicatorSnapshot, Wish]]:
    decided = []
    while context.pending:
        snapshot = snapshot_from_row(context.pending[0])
        end_us = to_micros(snapshot.candle_end)
        if missing(context, end_us, plan):
            if now - context.pending[0].get("since", now) < plan.wait_s:
                break
            context.decided_early += 1
        _in_force(context, end_us, plan)
        wish = observe_snapshot(context, snapshot, strategy)
        context.pending.pop(0)
        if wish is not None:
            decided.append((snapshot, wish))
    _trim(context, plan)
    return decided


def missing(context: SymbolContext, end_us: int, plan: GatePlan) -> list[str]:
    """Subjects in the window of a decision at ``end_us`` whose enrichment has not arrived."""
    if not plan.weighs:
        return []
    arrived = {a[1] for a in context.arrived}
    return [sid for t, sid in context.expected if end_us - plan.hold_us <= t < end_us and sid not in arrived]


def _in_force(context: SymbolContext, end_us: int, plan: GatePlan) -> None:
    """Set the context's enrichment to the one in force at ``end_us`` (or none)."""
    window = [a for a in context.arrived if end_us - plan.hold_us <= a[0] < end_us]
    if not window:
        context.enrichment_id, context.regime, context.risk_flags = "", Regime.UNKNOWN.value, []
        context.snapshots_since_enrichment = ENRICHMENT_HOLD
        return
    _, _, enrichment_id, regime, flags = max(window, key=lambda a: (a[0], _blocks(a[3], a[4]), a[2]))
    context.enrichment_id, context.regime, context.risk_flags = enrichment_id, regime, list(flags)
    context.snapshots_since_enrichment = 0


def _blocks(regime: str, flags: list[str]) -> bool:
    return regime == Regime.VOLATILE.value or bool(BLOCKING_FLAGS.intersection(flags))


def _trim(context: SymbolContext, plan: GatePlan) -> None:
    """Forget what no later decision can weigh (before the last decided window)."""
    floor = context.last_candle_end_us - plan.hold_us
    context.expected = [e for e in context.expected if e[0] >= floor][-MAX_ENTRIES:]
    context.arrived = [a for a in context.arrived if a[0] >= floor][-MAX_ENTRIES:]


_FIELDS = ("ema_fast", "ema_slow", "rsi", "atr", "realised_volatility", "volume_zscore")


def snapshot_row(snapshot: IndicatorSnapshot) -> dict[str, Any]:
    """A snapshot waiting for its decision, JSON-trivial (kept in the strategy row)."""
    e = snapshot.envelope
    return {"id": e.event_id, "time_us": to_micros(e.event_time), "ingest_us": to_micros(e.ingest_time),
            "producer": e.producer, "correlation_id": e.correlation_id, "causation_id": e.causation_id,
            "priority": str(e.priority), "retry_count": e.retry_count,
            "symbol": snapshot.symbol, "interval": snapshot.interval, "candle_id": snapshot.candle_id,
            "candle_end_us": to_micros(snapshot.candle_end), "close": str(snapshot.close),
            "anomaly_ids": list(snapshot.anomaly_ids), **{name: getattr(snapshot, name) for name in _FIELDS}}


def snapshot_from_row(row: dict[str, Any]) -> IndicatorSnapshot:
    """The snapshot a pending row holds (what strategies and signals read of it)."""
    envelope = Envelope(event_id=row["id"], event_type="IndicatorSnapshot", event_time=from_micros(row["time_us"]),
                        ingest_time=from_micros(row["ingest_us"]), producer=row["producer"],
                        schema_version=IndicatorSnapshot.SCHEMA_VERSION, correlation_id=row["correlation_id"],
                        causation_id=row["causation_id"], priority=Priority(row["priority"]),
                        retry_count=row["retry_count"])
    return IndicatorSnapshot(envelope=envelope, symbol=row["symbol"], interval=row["interval"],
                             candle_id=row["candle_id"], candle_end=from_micros(row["candle_end_us"]),
                             close=Decimal(row["close"]), anomaly_ids=list(row["anomaly_ids"]),
                             **{name: row[name] for name in _FIELDS})
