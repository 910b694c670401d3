"""The strategy decides the same whatever the order indicators and enrichments arrive in
(live, or a replay of one topic after the other), and waits for an enrichment it weighs."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import permutations

from domain.strategy.gate import GatePlan, gated_enrichment, gated_snapshot, snapshot_from_row, snapshot_row
from domain.strategy.strategies import SymbolContext, strategy_named
from schemas.records import Enrichment, Event, IndicatorSnapshot, Regime, Side
from tests.factories import T0, make_enrichment, make_indicator_snapshot

PLAN = GatePlan(trading_interval="1m", snapshot_interval="1m", snapshot_every_s=120, wait_s=60)
START = T0.replace(second=0, microsecond=0)


def history() -> tuple[list[IndicatorSnapshot], list[Enrichment]]:
    """EMA crosses up at minute 3, down at 6, up at 9; minute 2 raised an anomaly whose
    enrichment says VOLATILE (blocking the cross at 3); even minutes are due snapshots."""
    diffs = [-1, -1, -1, 1, 1, 1, -1, -1, -1, 1]
    snapshots = [make_indicator_snapshot(
        ema_fast=100.0 + d, ema_slow=100.0, close=Decimal(100), candle_end=START + timedelta(minutes=i),
        anomaly_ids=[f"anomaly-{i}"] if i == 2 else []) for i, d in enumerate(diffs)]
    enrichments = [make_enrichment(subject_event_id="anomaly-2", subject_type="Anomaly", regime=Regime.VOLATILE,
                                   risk_flags=["volume_spike"])]
    enrichments += [make_enrichment(subject_event_id=s.envelope.event_id, subject_type="IndicatorSnapshot",
                                    regime=Regime.TRENDING, risk_flags=[])
                    for s in snapshots if s.candle_end.minute % 2 == 0]
    return snapshots, [_at(e, s.candle_end) for e, s in zip(enrichments, [snapshots[2], *snapshots[::2]],
                                                            strict=True)]


def _at(enrichment: Enrichment, moment: datetime) -> Enrichment:
    return replace(enrichment, envelope=replace(enrichment.envelope, event_time=moment,
                                                event_id=f"enrichment-of-{enrichment.subject_event_id}"))


def decide(events: list[Event], now: float = 0.0) -> list[tuple[str, Side]]:
    context, strategy, decided = SymbolContext("BTCUSDT"), strategy_named("ema_cross"), []
    for event in events:
        if isinstance(event, IndicatorSnapshot):
            decided += gated_snapshot(context, event, strategy, PLAN, now)
        else:
            assert isinstance(event, Enrichment)
            decided += gated_enrichment(context, event, strategy, PLAN, now)
    return [(snapshot.envelope.event_id, wish.side) for snapshot, wish in decided]


def test_decisions_are_the_same_whatever_the_arrival_order() -> None:
    snapshots, enrichments = history()
    by_subject = {e.subject_event_id: e for e in enrichments}
    live: list[Event] = []  # each enrichment a little after its subject's snapshot
    for snapshot in snapshots:
        live.append(snapshot)
        live += [by_subject[s] for s in (snapshot.envelope.event_id, *snapshot.anomaly_ids) if s in by_subject]
    expected = decide(live)
    # the cross up at minute 3 is blocked by the VOLATILE anomaly of minute 2; 6 and 9 trade
    assert [side for _, side in expected] == [Side.SELL, Side.BUY]
    for first, second in permutations([snapshots, enrichments]):
        assert decide([*first, *second]) == expected  # a replay of one topic after the other
    assert decide([*snapshots, *reversed(enrichments)]) == expected


def test_a_decision_waits_for_its_enrichment_and_a_missing_one_only_for_wait_s() -> None:
    snapshots = history()[0]
    context, strategy = SymbolContext("BTCUSDT"), strategy_named("ema_cross")
    decided = [d for s in snapshots for d in gated_snapshot(context, s, strategy, PLAN, 0.0)]
    assert decided == [] and len(context.pending) == len(snapshots) - 1  # the first decides at once
    late = gated_snapshot(context, snapshots[-1], strategy, PLAN, PLAN.wait_s + 1)  # nothing came
    assert context.decided_early > 0 and late  # the guard decided, and counted it
    assert context.pending == []


def test_a_pending_snapshot_survives_its_row() -> None:
    snapshot = history()[0][2]
    assert snapshot_from_row(snapshot_row(snapshot)) == snapshot
