"""Deciding what happens to an account's orders (pure): risk limits, fills, timeouts.
Each function returns the trading events it decided, already folded into the state with
``domain.ledger.apply`` (the same fold rebuild uses).

* ``place``: a PlaceOrder passes the risk checks (kill switch, paused strategy, quantity,
  orders per minute, max position per symbol including open orders, max gross exposure)
  and becomes OrderPlaced, or it becomes OrderDenied with the reason.
* ``on_mark``: a Mark (the trades of one symbol in a short slice of event time) fills
  open orders placed before it: at most ``participation`` x its size each, at its price
  plus slippage against us, paying a fee; limit orders only at their price or better.
  Every fill is followed by PositionChanged. An order fills only against marks up to its
  deadline (placed time + ``order_timeout``, event time).
* ``expire``: an order whose deadline is at or before an input's event time is closed by
  OrderExpired: no order stays pending.
* user commands (pause/resume, risk limits, kill switch, flatten) are in domain.controls;
  domain.account is the one fold that calls all of these for each input.

Event ids are derived from what caused them, so deciding again after a crash yields the
same events and the fold ignores the repeats.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from domain.clock import from_micros, to_micros
from domain.command_rules import limit_value
from domain.ledger import MINUTE_US, apply
from domain.portfolio import EXACT, ZERO, Order, OrderStatus, Portfolio, quantize
from schemas.records import (
    Envelope,
    Event,
    Mark,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderType,
    PlaceOrder,
    PositionChanged,
    Side,
    TradeSignal,
)

_NAMESPACE = uuid.UUID("7a1d9f64-2b3c-4e8a-a5f0-93c2d1e6b7f4")
BPS = Decimal(10_000)


def derived_id(*parts: str) -> str:
    """A deterministic event id from what caused the event."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits checked before an order is placed."""

    max_position: Decimal
    max_gross_exposure: Decimal
    max_orders_per_minute: int

    def overridden(self, overrides: dict[str, str]) -> RiskLimits:
        """These limits with a user's overrides (already validated) applied."""
        values: dict[str, Any] = {}
        for name, text in overrides.items():
            value = limit_value(name, text)  # bounded: a forged override is ignored, never parsed
            if value is not None:
                values[name] = value
        return replace(self, **values)


@dataclass(frozen=True, slots=True)
class TradingConfig:
    """Limits, fill model and saga timeout of the paper broker."""

    limits: RiskLimits
    fee_bps: Decimal
    slippage_bps: Decimal
    participation: Decimal
    order_timeout_us: int
    producer: str = "agent.trading"


def mark_time(mark: Mark) -> int:
    """A mark's event time (its last trade's time), in microseconds."""
    return to_micros(mark.envelope.event_time)


def price_at(recent: list[Mark], time_us: int) -> Decimal:
    """The market price at an event time: the last mark at or before it, else the first
    after it (never the newest mark that happened to have arrived: that depends on when)."""
    before = [mark for mark in recent if mark_time(mark) <= time_us]
    return before[-1].price if before else recent[0].price


def remember_mark(marks: dict[str, list[Mark]], mark: Mark, keep: int) -> bool:
    """Add a mark to its symbol's recent marks (event-time order, the last ``keep``);
    False if it was already there."""
    recent = marks.setdefault(mark.symbol, [])
    if any(m.envelope.event_id == mark.envelope.event_id for m in recent):
        return False
    recent.append(mark)
    recent.sort(key=lambda m: (m.envelope.event_time, m.last_trade_id))
    del recent[:-keep]
    return True


class Emitter:
    """Builds events caused by one input and folds each into the state as it goes."""

    def __init__(self, state: Portfolio, config: TradingConfig, cause: Event) -> None:
        self.state, self.config, self.cause = state, config, cause
        self.events: list[Event] = []

    def envelope(self, cls: type[Event], event_id: str, time_us: int) -> Envelope:
        return cls.envelope_for(
            event_time=from_micros(time_us), producer=self.config.producer, event_id=event_id,
            causation_id=self.cause.envelope.event_id,
            correlation_id=self.cause.envelope.correlation_id or self.cause.envelope.event_id,
            ingest_time=self.cause.envelope.ingest_time)

    def emit(self, event: Event) -> None:
        apply(self.state, event)
        self.events.append(event)

    def deny(self, order_id: str, symbol: str, code: str, reason: str, time_us: int) -> None:
        """Refuse a PlaceOrder before it is placed."""
        self.emit(OrderDenied(envelope=self.envelope(OrderDenied, derived_id(order_id, "denied"), time_us),
                              order_id=order_id, account=self.state.account, symbol=symbol,
                              reason_code=code, reason=reason))

    def cancel(self, order: Order, code: str, reason: str, time_us: int) -> None:
        """Cancel an open order on the user's command that is the cause."""
        self.emit(OrderCanceled(
            envelope=self.envelope(OrderCanceled, derived_id(order.order_id, "canceled"), time_us),
            order_id=order.order_id, account=self.state.account, symbol=order.symbol, reason_code=code,
            reason=reason, command_id=self.cause.envelope.event_id, remaining_quantity=order.remaining))

    def close_expired(self, order: Order, deadline_us: int) -> None:
        """Close an order that outlived its timeout."""
        self.emit(OrderExpired(
            envelope=self.envelope(OrderExpired, derived_id(order.order_id, "expired"), deadline_us),
            order_id=order.order_id, account=self.state.account, symbol=order.symbol,
            filled_quantity=order.filled, remaining_quantity=order.remaining,
            deadline=from_micros(deadline_us)))


def limits_of(state: Portfolio, config: TradingConfig) -> RiskLimits:
    """The account's effective limits (configured, then user overrides)."""
    return config.limits.overridden(state.controls.limits)


def _risk_problem(state: Portfolio, command: PlaceOrder, limits: RiskLimits,
                  prices: dict[str, Decimal]) -> tuple[str, str] | None:
    if state.controls.killed:
        return "kill_switch", "the kill switch is on"
    if command.strategy and command.strategy in state.controls.paused:
        return "strategy_paused", f"strategy {command.strategy} is paused"
    if command.quantity <= 0:
        return "invalid_quantity", f"quantity must be positive, got {command.quantity}"
    time_us = to_micros(command.envelope.event_time)
    recent = [t for t in state.order_times if t > time_us - MINUTE_US]
    if len(recent) >= limits.max_orders_per_minute:
        return "max_orders_per_minute", (f"{len(recent)} orders in the last minute "
                                         f"(limit {limits.max_orders_per_minute})")
    signed = command.quantity if command.side == Side.BUY else -command.quantity
    symbols = {*state.positions, *(o.symbol for o in state.open_orders()), command.symbol}
    worst = {s: state.position(s).quantity for s in symbols}
    for order in state.open_orders():
        worst[order.symbol] += order.signed_remaining
    worst[command.symbol] += signed
    if abs(worst[command.symbol]) > limits.max_position:
        return "max_position", (f"{command.symbol} position could reach {worst[command.symbol]} "
                                f"(limit {limits.max_position})")
    missing = [s for s, q in worst.items() if q and s not in prices]
    if missing:
        return "no_market_price", f"no market price yet for {', '.join(sorted(missing))}"
    gross = sum((abs(q) * prices[s] for s, q in worst.items() if q), ZERO)
    if gross > limits.max_gross_exposure:
        return "max_gross_exposure", f"gross exposure could reach {quantize(gross)} (limit {limits.max_gross_exposure})"
    return None


def place(state: Portfolio, command: PlaceOrder, config: TradingConfig,
          marks: dict[str, list[Mark]]) -> list[Event]:
    """Place an order (or deny it), then fill it against the marks after it
    (``marks``: each symbol's recent marks, oldest first)."""
    out = Emitter(state, config, command)
    if command.order_id in state.orders:
        return []
    time_us = to_micros(command.envelope.event_time)
    prices = {s: p.last_price for s, p in state.positions.items() if p.last_price}
    prices.update({s: price_at(m, time_us) for s, m in marks.items() if m})
    with localcontext(EXACT):
        problem = _risk_problem(state, command, limits_of(state, config), prices)
    if problem is not None:
        out.deny(command.order_id, command.symbol, *problem, time_us)
        return out.events
    out.emit(OrderPlaced(
        envelope=out.envelope(OrderPlaced, derived_id(command.order_id, "placed"), time_us),
        order_id=command.order_id, account=state.account, symbol=command.symbol, side=command.side,
        order_type=command.order_type, quantity=command.quantity, limit_price=command.limit_price,
        strategy=command.strategy))
    order = state.orders[command.order_id]
    for mark in marks.get(command.symbol, []):
        if order.status is not OrderStatus.OPEN:
            break
        _fill(out, order, mark)
    return out.events


def on_mark(state: Portfolio, mark: Mark, config: TradingConfig) -> list[Event]:
    """Fill the symbol's open orders that were placed before the mark."""
    out = Emitter(state, config, mark)
    for order in state.open_orders(mark.symbol):
        _fill(out, order, mark)
    return out.events


def _fill(out: Emitter, order: Order, mark: Mark) -> None:
    config = out.config
    time_us = mark_time(mark)
    if time_us <= order.last_fill_us or time_us > order.placed_us + config.order_timeout_us:
        return  # only trades after the order (and after its last fill), up to its deadline
    with localcontext(EXACT):
        quantity = min(order.remaining, quantize(mark.size * config.participation))
        slip = config.slippage_bps / BPS
        price = quantize(mark.price * (1 + slip if order.side == Side.BUY else 1 - slip))
        if order.limit_price is not None and (
                price > order.limit_price if order.side == Side.BUY else price < order.limit_price):
            return
        fee = quantize(quantity * price * config.fee_bps / BPS)
    if quantity <= 0:
        return
    fill_id = derived_id(order.order_id, mark.envelope.event_id)
    out.emit(OrderFilled(
        envelope=out.envelope(OrderFilled, derived_id(fill_id, "filled"), time_us),
        order_id=order.order_id, account=out.state.account, symbol=order.symbol, side=Side(order.side),
        fill_id=fill_id, fill_quantity=quantity, fill_price=price, fee=fee,
        remaining_quantity=order.remaining - quantity, source_trade_id=mark.last_trade_id))
    position = out.state.position(order.symbol)
    changed = PositionChanged(
        envelope=out.envelope(PositionChanged, derived_id(fill_id, "position"), time_us),
        account=out.state.account, symbol=order.symbol, quantity=position.quantity,
        average_price=position.average_price, realised_pnl=position.realised, fees_paid=position.fees,
        order_id=order.order_id)
    out.emit(replace(changed, envelope=replace(changed.envelope, causation_id=out.events[-1].envelope.event_id)))


def expire(state: Portfolio, as_of_us: int, config: TradingConfig, cause: Event) -> list[Event]:
    """Close every open order whose deadline (placed time + the timeout, event time) is at
    or before ``as_of_us``, the event time of ``cause``: OrderExpired for each."""
    out = Emitter(state, config, cause)
    for order in state.open_orders():
        deadline = order.placed_us + config.order_timeout_us
        if deadline <= as_of_us:
            out.close_expired(order, deadline)
    return out.events


def order_for_signal(signal: TradeSignal, account: str, quantity: Decimal, ingest_time: datetime) -> PlaceOrder:
    """The market order a TradeSignal asks for (its id derives from the signal and account;
    ``account:`` prefixes it so the order's owner is known from its id)."""
    signal_id = signal.envelope.event_id
    order_id = f"{account}:{derived_id(signal_id, account)}"
    return PlaceOrder(
        envelope=PlaceOrder.envelope_for(
            event_time=signal.envelope.event_time, producer=f"strategy.{signal.strategy}",
            event_id=derived_id(order_id, "place"), causation_id=signal_id,
            correlation_id=signal.envelope.correlation_id or signal_id, ingest_time=ingest_time),
        order_id=order_id, account=account, symbol=signal.symbol, side=signal.side,
        order_type=OrderType.MARKET, quantity=quantity, signal_id=signal_id, strategy=signal.strategy)


def account_of_order(order_id: str) -> str | None:
    """The account encoded in an order id made by ``order_for_signal`` (None otherwise)."""
    account, sep, _ = order_id.rpartition(":")
    return account if sep and account else None
