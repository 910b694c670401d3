"""From a final candle to its IndicatorSnapshot and Anomaly events (pure).

Ids are derived from the candle's id, so a re-emitted candle yields the same events and
consumers can de-duplicate them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.anomalies import Finding
from domain.indicators import Indicators
from schemas.records import Anomaly, Candle, IndicatorSnapshot

_NAMESPACE = uuid.UUID("0f6b2a8e-3c1d-4b7a-9e52-d84c7f1a6b30")


def derived_id(candle_id: str, what: str) -> str:
    """A deterministic id for an event derived from a candle."""
    return str(uuid.uuid5(_NAMESPACE, f"{candle_id}|{what}"))


def snapshot_record(candle: Candle, values: Indicators, producer: str,
                    ingest_time: datetime) -> IndicatorSnapshot:
    """The IndicatorSnapshot caused by a candle."""
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
