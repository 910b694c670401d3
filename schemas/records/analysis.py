"""Analysis records (schemas/analysis/*.avsc): candles, indicators, anomalies, enrichments."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from schemas.records.common import Event


class Regime(StrEnum):
    TRENDING = "TRENDING"
    RANGING = "RANGING"
    VOLATILE = "VOLATILE"
    UNKNOWN = "UNKNOWN"


class EnrichmentSource(StrEnum):
    CLAUDE = "CLAUDE"
    CACHE = "CACHE"
    FALLBACK = "FALLBACK"


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.analysis.Candle"
    SCHEMA_VERSION: ClassVar[int] = 2
    symbol: str
    interval: str
    window_start: datetime
    window_end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    vwap: Decimal
    trade_count: int
    buy_volume: Decimal
    sell_volume: Decimal
    first_trade_id: int
    last_trade_id: int
    taker_buy_quote_volume: Decimal | None = None
    close_time: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IndicatorSnapshot(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.analysis.IndicatorSnapshot"
    SCHEMA_VERSION: ClassVar[int] = 2
    symbol: str
    interval: str
    candle_id: str
    candle_end: datetime
    close: Decimal
    ema_fast: float | None = None
    ema_slow: float | None = None
    rsi: float | None = None
    atr: float | None = None
    realised_volatility: float | None = None
    volume_zscore: float | None = None
    anomaly_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomaly(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.analysis.Anomaly"
    symbol: str
    interval: str
    rule: str
    value: float
    threshold: float
    candle_id: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrichment(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.analysis.Enrichment"
    SCHEMA_VERSION: ClassVar[int] = 2
    subject_event_id: str
    subject_type: str
    symbol: str | None = None
    regime: Regime
    sentiment: float
    risk_flags: list[str]
    confidence: float
    rationale: str
    model: str
    prompt_version: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cache_hit: bool
    source: EnrichmentSource
    fallback_reason: str | None = None
