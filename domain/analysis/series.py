"""The analysis fold: a final candle -> the series' next indicator state, its
IndicatorSnapshot and the Anomaly events of the rules that fire (pure; domain/fold.py's shape).

``Analysis(config, rules, producer).evolve(state, AnalysisInput(candle, ingest_time))``
over one (symbol, interval) series; ``domain.fold.step`` skips a candle already applied
(its market.candles position), and ``apply_candle`` ignores a candle whose window is not
after the last one (a candle re-emitted at a later offset). Ids are derived from the
candle's id, so a re-emitted candle yields the same events and consumers can de-duplicate them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.analysis.anomalies import AnomalyRules, Finding, detect
from domain.analysis.indicators import IndicatorConfig, Indicators, IndicatorState, apply_candle
from domain.fold import Position
from domain.ids import uuid5_in
from schemas.records import Anomaly, Candle, IndicatorSnapshot

_derived_uuid = uuid5_in(uuid.UUID("0f6b2a8e-3c1d-4b7a-9e52-d84c7f1a6b30"))


def derived_id(candle_id: str, what: str) -> str:
    """A deterministic id for an event derived from a candle (a UUID5)."""
    return _derived_uuid(f"{candle_id}|{what}")


def snapshot_record(candle: Candle, values: Indicators, producer: str,
                    ingest_time: datetime, anomaly_ids: list[str] | None = None) -> IndicatorSnapshot:
    """The IndicatorSnapshot caused by a candle (naming the anomalies the candle raised)."""
    candle_id = candle.envelope.event_id
    return IndicatorSnapshot(
        envelope=IndicatorSnapshot.envelope_for(
            event_time=candle.window_end, producer=producer, ingest_time=ingest_time,
            event_id=derived_id(candle_id, "indicators"), causation_id=candle_id,
            correlation_id=candle.envelope.correlation_id),
        symbol=candle.symbol, interval=candle.interval, candle_id=candle_id,
        candle_end=candle.window_end, close=candle.close,
        ema_fast=values.ema_fast, ema_slow=values.ema_slow, rsi=values.rsi, atr=values.atr,
        realised_volatility=values.realised_volatility, volume_zscore=values.volume_zscore,
        anomaly_ids=list(anomaly_ids or []),
    )


def anomaly_record(candle: Candle, finding: Finding, producer: str,
                   ingest_time: datetime) -> Anomaly:
    """The Anomaly event of a rule that fired on a candle."""
    candle_id = candle.envelope.event_id
    return Anomaly(
        envelope=Anomaly.envelope_for(
            event_time=candle.window_end, producer=producer, ingest_time=ingest_time,
            event_id=derived_id(candle_id, f"anomaly:{finding.rule}"), causation_id=candle_id,
            correlation_id=candle.envelope.correlation_id),
        symbol=candle.symbol, interval=candle.interval, rule=finding.rule, value=finding.value,
        threshold=finding.threshold, candle_id=candle_id, description=finding.description,
    )


@dataclass(slots=True)
class SeriesState:
    """The fold's state of one (symbol, interval) series."""

    indicators: IndicatorState | None = None
    """None before the series' first candle."""
    applied: Position = field(default_factory=Position)


def series_from_entry(entry: Any) -> SeriesState:
    """A series' state from its entry in the symbol's indicators row; empty without one, or
    for an entry that is not one (whoever can write the changelog can put anything there:
    the series starts again and its next row replaces it)."""
    try:
        return SeriesState(IndicatorState(**entry["state"]), Position(*entry.get("applied", (-1, -1))))
    except (TypeError, KeyError, ValueError, AttributeError):
        return SeriesState()


def series_entry(indicators: IndicatorState, applied: Position, latest: Any) -> dict[str, Any]:
    """A series' entry in the symbol's indicators row: its indicator state, the position of
    the last candle applied and ``latest``, its last snapshot as JSON."""
    return {"state": indicators.to_row(), "applied": [applied.partition, applied.offset], "latest": latest}


@dataclass(frozen=True, slots=True)
class AnalysisInput:
    """One final candle, and when it is analysed (the outputs' ingest time: the fold reads no clock)."""

    candle: Candle
    ingest_time: datetime


Output = IndicatorSnapshot | Anomaly


@dataclass(frozen=True, slots=True)
class Analysis:
    """The analysis fold with its indicator periods, anomaly rules and producer name."""

    producer: str
    config: IndicatorConfig = field(default_factory=IndicatorConfig)
    rules: AnomalyRules = field(default_factory=AnomalyRules)

    def evolve(self, state: SeriesState, item: AnalysisInput) -> tuple[SeriesState, list[Output]]:
        """Fold one candle: the snapshot first, then the anomalies (none for an ignored candle)."""
        candle, previous = item.candle, state.indicators
        state.indicators, values = apply_candle(previous, candle, self.config)
        if values is None:
            return state, []
        anomalies = [anomaly_record(candle, finding, self.producer, item.ingest_time)
                     for finding in detect(previous, candle, values, self.rules)]
        snapshot = snapshot_record(candle, values, self.producer, item.ingest_time,
                                   [a.envelope.event_id for a in anomalies])
        return state, [snapshot, *anomalies]
