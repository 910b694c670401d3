"""The paper-trading ledger's state: one ``Portfolio`` per account, what ``domain.trading.ledger``
folds trading.events into.

A portfolio holds cash, positions (signed quantity, cost basis, realised P&L, fees, last
fill price), orders and their lifecycle, and the account's controls (paused strategies,
risk-limit overrides, kill switch).

Amounts are exact ``Decimal``s. A position keeps its cost basis (quantity x average price)
rather than the average price, so ``cash + sum(cost) == initial cash + realised P&L - fees``
holds exactly; only the cost removed by a reducing fill is rounded (to 18 places, the
contract's scale), and the same rounded figure goes into realised P&L.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from domain.amounts import ZERO, quantize
from schemas.records import Side


class OrderStatus(StrEnum):
    OPEN = "OPEN"
    FILLED = "FILLED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    CANCELED = "CANCELED"


LEGACY_CANCEL_CODES = ("kill_switch", "flatten")
"""reason_codes of an old OrderRejected that was a user's cancel (``expired``: an expiry;
any other: a denial)."""


def legacy_status(reason_code: str) -> OrderStatus:
    """What an old OrderRejected (or a REJECTED row) with this reason_code means now."""
    if reason_code == "expired":
        return OrderStatus.EXPIRED
    return OrderStatus.CANCELED if reason_code in LEGACY_CANCEL_CODES else OrderStatus.DENIED


@dataclass(slots=True)
class Order:
    """One order's lifecycle (placed -> filled | expired | canceled; or denied)."""

    order_id: str
    symbol: str
    side: str = ""
    quantity: Decimal = ZERO
    order_type: str = "MARKET"
    limit_price: Decimal | None = None
    placed_us: int = 0  # event (market) time of the order: its timeout runs from here
    strategy: str = ""
    filled: Decimal = ZERO
    status: OrderStatus = OrderStatus.OPEN
    reason_code: str = ""
    reason: str = ""
    last_fill_us: int = 0
    fill_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    closed_us: int = 0  # event time it was filled, expired or canceled (0: open, or from an old row)
    correlation_id: str = ""  # the flow it belongs to (the signal's): its fills and expiry carry it

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill."""
        return self.quantity - self.filled

    @property
    def signed_remaining(self) -> Decimal:
        """Remaining quantity, negative for a sell."""
        return self.remaining if self.side == Side.BUY else -self.remaining


@dataclass(slots=True)
class Position:
    """A signed position: quantity (negative = short) and its cost basis."""

    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    last_price: Decimal = ZERO

    @property
    def average_price(self) -> Decimal:
        """Cost basis per unit (0 when flat)."""
        return quantize(self.cost / self.quantity) if self.quantity else ZERO

    def unrealised(self, price: Decimal | None = None) -> Decimal:
        """P&L of the open quantity at ``price`` (default: the last fill price)."""
        mark = self.last_price if price is None else price
        return quantize(self.quantity * mark - self.cost) if self.quantity else ZERO


@dataclass(slots=True)
class Controls:
    """What users changed with commands: paused strategies, limit overrides, kill switch."""

    paused: list[str] = field(default_factory=list)
    limits: dict[str, str] = field(default_factory=dict)
    killed: bool = False


@dataclass(slots=True)
class Portfolio:
    """Everything known about one account, folded from its trading.events."""

    account: str
    initial_cash: Decimal
    cash: Decimal = ZERO
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    controls: Controls = field(default_factory=Controls)
    order_times: list[int] = field(default_factory=list)  # accepted orders, last minute, oldest first
    acknowledged: list[str] = field(default_factory=list)  # recent command ids
    events: int = 0  # events that changed the state

    @classmethod
    def open(cls, account: str, initial_cash: Decimal) -> Portfolio:
        """A new account holding only cash."""
        return cls(account=account, initial_cash=initial_cash, cash=initial_cash)

    def position(self, symbol: str) -> Position:
        """The symbol's position (flat if never traded)."""
        return self.positions.get(symbol) or Position()

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders still open (not filled, expired or canceled), oldest first."""
        return [o for o in self.orders.values()
                if o.status is OrderStatus.OPEN and (symbol is None or o.symbol == symbol)]
