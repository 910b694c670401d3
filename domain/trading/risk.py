"""The risk checks before an order is placed (pure), on the account as it stood at the
order's own event time, not as it happens to stand when the order arrives.

An order arrives after the marks of its time (the strategy decides on closed candles, and
in a replay at max speed the marks may be minutes ahead), so by then earlier orders of its
symbol may have filled or expired against marks that come after it. Per symbol that does
not change the worst case: an earlier order still working at the order's time (its
deadline, or the time it was filled, expired or canceled, is after it) counts with its
whole quantity, filled or not; one that was over by then counts with what it filled.
Orders per minute count the accepted orders of the minute up to the order's time.

What still depends on arrival: checks across symbols (orders per minute, gross
exposure) see the other symbols' orders that have arrived, which differ between
interleavings when those limits bind; user commands act when they arrive.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from domain.amounts import EXACT, ZERO, quantize
from domain.clock import to_micros
from domain.trading.ledger import MINUTE_US
from domain.trading.portfolio import Order, OrderStatus, Portfolio
from schemas.records import PlaceOrder, Side

if TYPE_CHECKING:
    from domain.trading.orders import RiskLimits


def working_at(order: Order, time_us: int, timeout_us: int) -> bool:
    """Whether an order was still working at ``time_us`` (event time): placed, and not
    over by then (open until its deadline, or closed after it)."""
    if order.status is OrderStatus.DENIED:
        return False
    over_us = order.placed_us + timeout_us if order.status is OrderStatus.OPEN else order.closed_us
    return not over_us or over_us > time_us  # 0: closed in a row from before closing times were kept


def worst_positions(state: Portfolio, time_us: int, timeout_us: int) -> dict[str, Decimal]:
    """Per symbol, the position at ``time_us`` if every order working then filled completely."""
    worst = {s: p.quantity for s, p in state.positions.items()}
    for order in state.orders.values():
        if order.placed_us <= time_us and working_at(order, time_us, timeout_us):
            worst[order.symbol] = worst.get(order.symbol, ZERO) + order.signed_remaining
    return worst


def risk_problem(state: Portfolio, command: PlaceOrder, limits: RiskLimits, prices: dict[str, Decimal],
                 timeout_us: int) -> tuple[str, str] | None:
    """Why the order must be denied (reason code, reason), or None."""
    if state.controls.killed:
        return "kill_switch", "the kill switch is on"
    if command.strategy and command.strategy in state.controls.paused:
        return "strategy_paused", f"strategy {command.strategy} is paused"
    if command.quantity <= 0:
        return "invalid_quantity", f"quantity must be positive, got {command.quantity}"
    time_us = to_micros(command.envelope.event_time)
    recent = [t for t in state.order_times if time_us - MINUTE_US < t <= time_us]
    if len(recent) >= limits.max_orders_per_minute:
        return "max_orders_per_minute", (f"{len(recent)} orders in the last minute "
                                         f"(limit {limits.max_orders_per_minute})")
    signed = command.quantity if command.side == Side.BUY else -command.quantity
    worst = worst_positions(state, time_us, timeout_us)
    worst[command.symbol] = worst.get(command.symbol, ZERO) + signed
    if abs(worst[command.symbol]) > limits.max_position:
        return "max_position", (f"{command.symbol} position could reach {_shown(worst[command.symbol])} "
                                f"(limit {limits.max_position})")
    missing = [s for s, q in worst.items() if q and s not in prices]
    if missing:
        return "no_market_price", f"no market price yet for {', '.join(sorted(missing))}"
    gross = sum((abs(q) * prices[s] for s, q in worst.items() if q), ZERO)
    if gross > limits.max_gross_exposure:
        return "max_gross_exposure", (f"gross exposure could reach {_shown(quantize(gross))} "
                                      f"(limit {limits.max_gross_exposure})")
    return None


def _shown(value: Decimal) -> str:
    """A figure as its value reads, however many places the sum it came from kept (-6, not -6.000...)."""
    with localcontext(EXACT):
        return f"{value.normalize():f}"
