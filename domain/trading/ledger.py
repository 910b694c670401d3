"""The paper-trading ledger: a pure fold ``apply(state, event)`` over trading.events, into
the account's ``Portfolio`` (domain.trading.portfolio).

An order ends in one of four ways, each its own event: filled (OrderFilled), denied before
it was placed (OrderDenied), expired (OrderExpired) or canceled by a user (OrderCanceled).
Older topics hold OrderRejected for the last three; it still folds, told apart by its
``reason_code`` as it was written.

The live ledger agent, ``ticktide rebuild portfolio`` and the tests all build the
portfolio with this fold. Every figure a fill moves is rounded to 18 places, and the same
rounded figures go into cash, cost and realised P&L (see domain.trading.portfolio).

The fold is idempotent by event identity: an order is placed once (order id), a fill
counts once (fill id), an order closes once, a command is acknowledged once. An event
re-delivered after a crash, or a prefix of the topic read twice, changes nothing, as long
as its order is among the remembered ones (all open orders and the last 100-200 closed).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from domain.amounts import EXACT, ZERO, quantize
from domain.clock import to_micros
from domain.fold import Position as Applied
from domain.rules.commands import MAX_ORDERS_PER_MINUTE, Problem, command_from_text
from domain.trading.portfolio import Order, OrderStatus, Portfolio, Position, legacy_status
from schemas.records import (
    CommandAcknowledged,
    Event,
    FlattenPosition,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PauseStrategy,
    PositionChanged,
    ReleaseKillSwitch,
    ResumeStrategy,
    SetRiskLimit,
    Side,
)

MINUTE_US = 60_000_000
KEEP_CLOSED_ORDERS = 100
"""Closed orders remembered per account (between 100 and 200): what /orders can show and
the window within which a re-delivered order or fill is recognised as a repeat."""
KEEP_ACKNOWLEDGED = 200
MAX_ORDER_TIMES = MAX_ORDERS_PER_MINUTE
"""Order times kept for the orders-per-minute limit (the limit can be at most this)."""


def apply(state: Portfolio, event: Event) -> Portfolio:
    """Fold one trading event into the account's state (in place); the state."""
    with localcontext(EXACT):
        changed = _apply(state, event)
    if changed:
        state.events += 1
    return state


@dataclass(slots=True)
class Projection:
    """A portfolio folded from its account's trading.events, and the event last applied."""

    portfolio: Portfolio
    applied: Applied = field(default_factory=Applied)


def evolve(state: Projection, event: Event) -> tuple[Projection, list[Event]]:
    """``apply`` in the one fold shape (domain.fold): a trading event emits nothing."""
    apply(state.portfolio, event)
    return state, []


def fold(state: Portfolio, events: list[Event]) -> Portfolio:
    """Apply events in order."""
    for event in events:
        apply(state, event)
    return state


def _apply(state: Portfolio, event: Event) -> bool:
    if isinstance(event, OrderPlaced):
        return _placed(state, event)
    if isinstance(event, OrderFilled):
        return _filled(state, event)
    if isinstance(event, OrderDenied | OrderExpired | OrderCanceled | OrderRejected):
        return _closed(state, event)
    if isinstance(event, CommandAcknowledged):
        return _acknowledged(state, event)
    if isinstance(event, PositionChanged):
        return False  # derived from the fill before it: nothing new to fold
    raise TypeError(f"not a trading event: {type(event).__name__}")


def _placed(state: Portfolio, event: OrderPlaced) -> bool:
    if event.order_id in state.orders:
        return False
    placed_us = to_micros(event.envelope.event_time)
    state.orders[event.order_id] = Order(
        order_id=event.order_id, symbol=event.symbol, side=str(event.side),
        quantity=event.quantity, order_type=str(event.order_type), limit_price=event.limit_price,
        placed_us=placed_us, strategy=_strategy(event), last_fill_us=placed_us,
        event_ids=[event.envelope.event_id], correlation_id=event.envelope.correlation_id or "")
    times = state.order_times  # in time order, whatever order the orders arrived in
    bisect.insort(times, placed_us)
    newest = times[-1]
    drop = 0
    while drop < len(times) and (times[drop] <= newest - MINUTE_US or len(times) - drop > MAX_ORDER_TIMES):
        drop += 1
    del times[:drop]
    return True


def _strategy(event: OrderPlaced) -> str:
    """The strategy that placed an order. OrderPlaced v1 had no field for it: the ledger
    that wrote those named it in the producer (``strategy.NAME``), so that is what they
    mean (shown only; no decision reads an order's strategy)."""
    if event.envelope.schema_version == 1 and event.envelope.producer.startswith("strategy."):
        return event.envelope.producer.removeprefix("strategy.")[:64]
    return event.strategy


def _filled(state: Portfolio, event: OrderFilled) -> bool:
    order = state.orders.get(event.order_id)
    if order is None or order.status is not OrderStatus.OPEN or event.fill_id in order.fill_ids:
        return False
    order.fill_ids.append(event.fill_id)
    order.event_ids.append(event.envelope.event_id)
    order.filled += event.fill_quantity
    order.last_fill_us = to_micros(event.envelope.event_time)
    if order.filled >= order.quantity:
        order.status = OrderStatus.FILLED
        order.closed_us = order.last_fill_us
        _trim(state)
    signed = event.fill_quantity if event.side == Side.BUY else -event.fill_quantity
    position = state.positions.setdefault(event.symbol, Position())
    paid = _trade(position, signed, event.fill_price)
    position.fees += event.fee
    position.last_price = event.fill_price
    state.cash -= paid + event.fee
    return True


def _trade(position: Position, signed: Decimal, price: Decimal) -> Decimal:
    """Move a position by ``signed`` units at ``price``: reduce it (realising P&L), then
    open the rest the other way. Returns the cash paid (negative: received); every figure
    is rounded to 18 places, and the same rounded figures go into cash, cost and P&L."""
    paid = quantize(signed * price)
    opening_paid = paid
    if position.quantity and (position.quantity > 0) != (signed > 0):
        closing = min(abs(signed), abs(position.quantity))
        closing_signed = closing if position.quantity > 0 else -closing  # units leaving the position
        closing_paid = paid if closing == abs(signed) else quantize(-closing_signed * price)
        removed = quantize(position.cost * closing / abs(position.quantity))
        position.realised += -closing_paid - removed
        position.cost -= removed
        position.quantity -= closing_signed
        signed += closing_signed
        opening_paid = paid - closing_paid
    if signed:
        position.quantity += signed
        position.cost += opening_paid
    if not position.quantity:
        position.cost = ZERO
    return paid


def _closed(state: Portfolio, event: OrderDenied | OrderExpired | OrderCanceled | OrderRejected) -> bool:
    if isinstance(event, OrderDenied | OrderRejected):
        status = OrderStatus.DENIED if isinstance(event, OrderDenied) else legacy_status(event.reason_code)
        code, reason = event.reason_code, event.reason
    elif isinstance(event, OrderExpired):
        status, code, reason = OrderStatus.EXPIRED, "expired", "not filled within the timeout"
    else:
        status, code, reason = OrderStatus.CANCELED, event.reason_code, event.reason
    order = state.orders.get(event.order_id)
    if order is None:  # denied before it was placed
        if status is not OrderStatus.DENIED:
            return False
        order = state.orders[event.order_id] = Order(order_id=event.order_id, symbol=event.symbol)
    elif order.status is not OrderStatus.OPEN:
        return False
    order.status, order.reason_code, order.reason = status, code, reason
    order.closed_us = to_micros(event.envelope.event_time)
    order.event_ids.append(event.envelope.event_id)
    _trim(state)
    return True


def _acknowledged(state: Portfolio, event: CommandAcknowledged) -> bool:
    if event.command_id in state.acknowledged:
        return False
    state.acknowledged = [*state.acknowledged, event.command_id][-KEEP_ACKNOWLEDGED:]
    if not event.accepted:
        return True
    # An "accepted" command that is not valid (forged, or from before the rules) changes nothing.
    command = command_from_text(event.command, event.arguments, "ledger",
                                event_time=event.envelope.event_time, producer="ledger")
    if isinstance(command, Problem):
        return True
    controls = state.controls
    if isinstance(command, PauseStrategy):
        controls.paused = sorted({*controls.paused, command.strategy})
    elif isinstance(command, ResumeStrategy):
        controls.paused = [s for s in controls.paused if s != command.strategy]
    elif isinstance(command, SetRiskLimit):
        controls.limits = {**controls.limits, command.limit: event.arguments["value"]}
    elif not isinstance(command, FlattenPosition):
        controls.killed = not isinstance(command, ReleaseKillSwitch)
    return True


def _trim(state: Portfolio) -> None:
    """Once there are twice KEEP_CLOSED_ORDERS orders, forget the oldest closed ones down
    to KEEP_CLOSED_ORDERS (open ones stay); in batches, so it costs O(1) per event."""
    if len(state.orders) < 2 * KEEP_CLOSED_ORDERS:
        return
    closed = [k for k, o in state.orders.items() if o.status is not OrderStatus.OPEN]
    for order_id in closed[:max(0, len(closed) - KEEP_CLOSED_ORDERS)]:
        del state.orders[order_id]
