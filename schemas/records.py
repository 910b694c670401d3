"""Typed Python records, one per .avsc event schema (latest version), field for field.

Amounts (prices, sizes, volumes, P&L) are ``Decimal``: on the wire they are Avro
``decimal(38, 18)``, so a price like ``64000.10`` or a size like ``0.001`` arrives exactly
as the venue sent it and sums of them (volume, VWAP numerators) are exact and independent
of arrival order. Derived statistics (EMA, RSI, z-scores, scores) are ``float``.
``tests/unit/test_schema_records.py`` proves these classes and the .avsc files agree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar


class Priority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class Regime(StrEnum):
    TRENDING = "TRENDING"
    RANGING = "RANGING"
    VOLATILE = "VOLATILE"
    UNKNOWN = "UNKNOWN"


class EnrichmentSource(StrEnum):
    CLAUDE = "CLAUDE"
    CACHE = "CACHE"
    FALLBACK = "FALLBACK"


class HealthStatus(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


class Lifecycle(StrEnum):
    INITIALIZED = "INITIALIZED"
    CONFIGURED = "CONFIGURED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    DEGRADED = "DEGRADED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (what Avro timestamp-micros decodes to)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """Metadata every event carries."""

    event_id: str
    event_type: str
    event_time: datetime
    ingest_time: datetime
    producer: str
    schema_version: int
    correlation_id: str | None = None
    causation_id: str | None = None
    priority: Priority = Priority.NORMAL
    retry_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event record: an envelope plus a payload."""

    AVRO_NAME: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    envelope: Envelope

    @classmethod
    def envelope_for(
        cls,
        *,
        event_time: datetime,
        producer: str,
        event_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        priority: Priority = Priority.NORMAL,
        ingest_time: datetime | None = None,
    ) -> Envelope:
        """A fresh envelope for an event of this type (random id unless one is given)."""
        return Envelope(
            event_id=event_id or str(uuid.uuid4()),
            event_type=cls.__name__,
            event_time=event_time,
            ingest_time=ingest_time or utc_now(),
            producer=producer,
            schema_version=cls.SCHEMA_VERSION,
            correlation_id=correlation_id,
            causation_id=causation_id,
            priority=priority,
        )


# --- market ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.market.Trade"
    SCHEMA_VERSION: ClassVar[int] = 2
    venue: str
    symbol: str
    trade_id: int
    price: Decimal
    size: Decimal
    taker_side: Side
    trade_time: datetime
    trade_type: str | None = None
    first_trade_id: int | None = None
    last_trade_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeBatch(Event):
    """Consecutive market.trades records of one partition, forwarded untouched."""

    AVRO_NAME: ClassVar[str] = "ticktide.market.TradeBatch"
    source_topic: str
    source_partition: int
    fetched_at: datetime
    follows_offset: int
    offsets: list[int]
    timestamps_ms: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class BookTop(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.market.BookTop"
    venue: str
    symbol: str
    bid_price: Decimal
    bid_size: Decimal
    ask_price: Decimal
    ask_size: Decimal
    update_id: int | None = None
    quote_time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class News(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.market.News"
    headline: str
    source: str
    symbols: list[str]
    url: str | None = None
    published_time: datetime


# --- analysis -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.analysis.Candle"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class IndicatorSnapshot(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.analysis.IndicatorSnapshot"
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


# --- trading --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeSignal(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.trading.TradeSignal"
    symbol: str
    side: Side
    strength: float
    strategy: str
    reason: str
    cause_ids: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.trading.PlaceOrder"
    SCHEMA_VERSION: ClassVar[int] = 2
    order_id: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    signal_id: str | None = None
    expires_at: datetime | None = None
    strategy: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.trading.OrderPlaced"
    SCHEMA_VERSION: ClassVar[int] = 2
    order_id: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    strategy: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.trading.OrderFilled"
    order_id: str
    account: str
    symbol: str
    side: Side
    fill_id: str
    fill_quantity: Decimal
    fill_price: Decimal
    fee: Decimal
    remaining_quantity: Decimal
    source_trade_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Event):
    """Read only: what OrderDenied, OrderExpired and OrderCanceled replaced (one event for
    three meanings, told apart by ``reason_code``); older trading.events still hold it."""

    AVRO_NAME: ClassVar[str] = "ticktide.trading.OrderRejected"
    order_id: str
    account: str
    symbol: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionChanged(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.trading.PositionChanged"
    account: str
    symbol: str
    quantity: Decimal
    average_price: Decimal
    realised_pnl: Decimal
    fees_paid: Decimal
    order_id: str


# --- system ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.system.Heartbeat"
    SCHEMA_VERSION: ClassVar[int] = 2
    component: str
    worker_id: str
    host: str
    pid: int
    uptime_seconds: float
    events_processed: int
    sequence: int
    lifecycle: Lifecycle = Lifecycle.RUNNING
    period_seconds: float = 5.0
    events_per_second: float = 0.0
    errors: int = 0
    last_event_time: datetime | None = None
    lag: int = 0
    latency_ms: list[float] = field(default_factory=list)
    dependencies: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentStatus(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.system.ComponentStatus"
    SCHEMA_VERSION: ClassVar[int] = 2
    component: str
    worker_id: str
    status: HealthStatus
    detail: str
    lifecycle: Lifecycle = Lifecycle.RUNNING


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.system.DeadLetter"
    source_topic: str
    source_partition: int
    source_offset: int
    original_key: bytes | None
    original_value: bytes | None
    agent: str
    reason: str
    error_type: str
    error_message: str
    attempt: int


# --- user -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCommand(Event):
    """Read only: a free-text command verb, replaced by the typed commands below; older
    records on user.commands and trading.commands still hold it."""

    AVRO_NAME: ClassVar[str] = "ticktide.user.UserCommand"
    command: str
    target: str | None = None
    arguments: dict[str, str] = field(default_factory=dict)
    user: str


RECORD_TYPES: dict[str, type[Event]] = {
    cls.AVRO_NAME: cls
    for cls in (
        Trade, TradeBatch, BookTop, News, Candle, IndicatorSnapshot, Anomaly, Enrichment, TradeSignal,
        PlaceOrder, OrderPlaced, OrderFilled, OrderRejected, PositionChanged, Heartbeat,
        ComponentStatus, DeadLetter, UserCommand,
    )
}
"""Every event record class by its Avro full name."""

ENUM_TYPES: dict[str, type[StrEnum]] = {
    "ticktide.Priority": Priority,
    "ticktide.Side": Side,
    "ticktide.OrderType": OrderType,
    "ticktide.analysis.Regime": Regime,
    "ticktide.analysis.EnrichmentSource": EnrichmentSource,
    "ticktide.system.HealthStatus": HealthStatus,
    "ticktide.system.Lifecycle": Lifecycle,
}
"""Every Avro enum by full name, mapped to its Python enum."""


# --- trading: acknowledgements (issue 5) ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandAcknowledged(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.trading.CommandAcknowledged"
    account: str
    command_id: str
    command: str
    arguments: dict[str, str] = field(default_factory=dict)
    accepted: bool
    detail: str


RECORD_TYPES[CommandAcknowledged.AVRO_NAME] = CommandAcknowledged


# --- trading: one event per meaning, marks, expiry requests (issue 14) ---------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(Event):
    """A PlaceOrder refused before it was placed (a risk check, an invalid order)."""

    AVRO_NAME: ClassVar[str] = "ticktide.trading.OrderDenied"
    order_id: str
    account: str
    symbol: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(Event):
    """An open order that outlived its timeout (event time), closed; its fills stay."""

    AVRO_NAME: ClassVar[str] = "ticktide.trading.OrderExpired"
    order_id: str
    account: str
    symbol: str
    filled_quantity: Decimal
    remaining_quantity: Decimal
    deadline: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(Event):
    """An open order canceled by a user's command (kill switch, flatten)."""

    AVRO_NAME: ClassVar[str] = "ticktide.trading.OrderCanceled"
    order_id: str
    account: str
    symbol: str
    reason_code: str
    reason: str
    command_id: str
    remaining_quantity: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark(Event):
    """A symbol's trades in one slice of event time: the last price, the total size."""

    AVRO_NAME: ClassVar[str] = "ticktide.trading.Mark"
    symbol: str
    price: Decimal
    size: Decimal
    trade_count: int
    last_trade_id: int
    slice_start: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireOrders(Event):
    """Request: close the account's orders due at or before this event's event time."""

    AVRO_NAME: ClassVar[str] = "ticktide.trading.ExpireOrders"
    account: str


# --- user commands: one imperative record per command ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseStrategy(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.PauseStrategy"
    user: str
    account: str | None = None
    strategy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeStrategy(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.ResumeStrategy"
    user: str
    account: str | None = None
    strategy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRiskLimit(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.SetRiskLimit"
    user: str
    account: str | None = None
    limit: str
    value: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class EngageKillSwitch(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.EngageKillSwitch"
    user: str
    account: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseKillSwitch(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.ReleaseKillSwitch"
    user: str
    account: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenPosition(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.FlattenPosition"
    user: str
    account: str | None = None
    symbol: str


Command = PauseStrategy | ResumeStrategy | SetRiskLimit | EngageKillSwitch | ReleaseKillSwitch | FlattenPosition
COMMAND_TYPES = (PauseStrategy, ResumeStrategy, SetRiskLimit, EngageKillSwitch, ReleaseKillSwitch, FlattenPosition)
"""The user commands, each its own record type."""

READ_ONLY_TYPES: tuple[type[Event], ...] = (OrderRejected, UserCommand)
"""Types older records on the topics hold: still decoded (and OrderRejected still folds),
never produced (no topic carries them any more)."""

_ADDED: tuple[type[Event], ...] = (OrderDenied, OrderExpired, OrderCanceled, Mark, ExpireOrders, *COMMAND_TYPES)
RECORD_TYPES.update({cls.AVRO_NAME: cls for cls in _ADDED})
