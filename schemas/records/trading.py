"""Trading records (schemas/trading/*.avsc): signals, the PlaceOrder command, the ledger's
facts (one event per meaning), marks and expiry requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from schemas.records.common import Event, OrderType, Side


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


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandAcknowledged(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.trading.CommandAcknowledged"
    account: str
    command_id: str
    command: str
    arguments: dict[str, str] = field(default_factory=dict)
    accepted: bool
    detail: str


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


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyProgressed(Event):
    """The strategy decided every snapshot of ``symbol`` up to this event's event time (its
    orders for them come before this record): how far the ledger may decide in event time."""

    AVRO_NAME: ClassVar[str] = "ticktide.trading.StrategyProgressed"
    account: str
    symbol: str
    strategy: str
