"""Typed Python records, one per .avsc event schema (latest version), field for field.

Amounts (prices, sizes, volumes, P&L) are ``Decimal``: on the wire they are Avro
``decimal(38, 18)``, so a price like ``64000.10`` or a size like ``0.001`` arrives exactly
as the venue sent it and sums of them (volume, VWAP numerators) are exact and independent
of arrival order. Derived statistics (EMA, RSI, z-scores, scores) are ``float``.
``tests/unit/test_schema_records.py`` proves these classes and the .avsc files agree.

One module per .avsc folder: common (the envelope, the ``Event`` base, shared enums),
market, analysis, trading, system, user. Import the records from here
(``from schemas.records import Trade``); this module also holds the registries of every
record and enum type.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.records.analysis import Anomaly, Candle, Enrichment, EnrichmentSource, IndicatorSnapshot, Regime
from schemas.records.common import Envelope, Event, Lifecycle, OrderType, Priority, Side, utc_now
from schemas.records.market import BookTop, News, Trade
from schemas.records.system import ComponentStatus, DeadLetter, HealthStatus, Heartbeat
from schemas.records.trading import (
    CommandAcknowledged,
    ExpireOrders,
    Mark,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PlaceOrder,
    PositionChanged,
    StrategyProgressed,
    TradeSignal,
)
from schemas.records.user import (
    COMMAND_TYPES,
    Command,
    EngageKillSwitch,
    FlattenPosition,
    PauseStrategy,
    ReleaseKillSwitch,
    ResumeStrategy,
    SetRiskLimit,
    UserCommand,
)

RECORD_TYPES: dict[str, type[Event]] = {
    cls.AVRO_NAME: cls
    for cls in (
        Trade, BookTop, News, Candle, IndicatorSnapshot, Anomaly, Enrichment, TradeSignal,
        PlaceOrder, OrderPlaced, OrderFilled, OrderRejected, PositionChanged, Heartbeat,
        ComponentStatus, DeadLetter, UserCommand, CommandAcknowledged,
        OrderDenied, OrderExpired, OrderCanceled, Mark, ExpireOrders, *COMMAND_TYPES, StrategyProgressed,
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

READ_ONLY_TYPES: tuple[type[Event], ...] = (OrderRejected, UserCommand)
"""Types older records on the topics hold: still decoded (and OrderRejected still folds),
never produced (no topic carries them any more)."""

__all__ = [
    "COMMAND_TYPES", "ENUM_TYPES", "READ_ONLY_TYPES", "RECORD_TYPES",
    "Anomaly", "BookTop", "Candle", "Command", "CommandAcknowledged", "ComponentStatus", "DeadLetter",
    "EngageKillSwitch", "Enrichment", "EnrichmentSource", "Envelope", "Event", "ExpireOrders", "FlattenPosition",
    "HealthStatus", "Heartbeat", "IndicatorSnapshot", "Lifecycle", "Mark", "News", "OrderCanceled", "OrderDenied",
    "OrderExpired", "OrderFilled", "OrderPlaced", "OrderRejected", "OrderType", "PauseStrategy", "PlaceOrder",
    "PositionChanged", "Priority", "Regime", "ReleaseKillSwitch", "ResumeStrategy", "SetRiskLimit", "Side",
    "StrategyProgressed", "Trade", "TradeSignal", "UserCommand", "utc_now",
]
