"""Deciding what happens to an account's orders (pure): risk limits, fills, timeouts.
Each function returns the trading events it decided, already folded into the state with
``domain.trading.ledger.apply`` (the same fold rebuild uses).

* ``place``: a PlaceOrder passes the risk checks (domain.trading.risk, as of its event time) and
  becomes OrderPlaced, or it becomes OrderDenied with the reason.
* ``settle`` (after an order, a mark of its symbol or an expiry request): a Mark (the
  trades of one symbol in a short slice of event time) fills open orders placed before
  it: at most ``participation`` x its size each, at its price plus slippage against us,
  paying a fee; limit orders only at their price or better. Every fill is followed by
  PositionChanged. An order fills only against marks up to its deadline (placed time +
  ``order_timeout``, event time), and a symbol's orders fill one after another, oldest
  first: an order takes marks after the one before it was filled or expired, so the
  fills of a symbol, and the positions after them, come in event-time order whether an
  order arrived before its marks or long after them.
* expiry: an order is closed by OrderExpired once its own symbol's marks (which arrive in
  event-time order) reach its deadline, or an expiry request's event time does: a mark of
  another symbol, which may run ahead, never expires it.
* user commands (pause/resume, risk limits, kill switch, flatten) are in domain.trading.controls;
  domain.trading.account is the one fold that calls all of these for each input.

Event ids are derived from what caused them, so deciding again after a crash yields the
same events and the fold ignores the repeats. Lineage too is the same whichever input
happened to decide it: a fill is caused by its mark, an expiry by the order's placement,
and both carry the order's correlation id.
"""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from domain.amounts import EXACT, quantize
from domain.clock import from_micros, to_micros
from domain.rules.commands import limit_value
from domain.trading.ledger import apply
from domain.trading.portfolio import Order, OrderStatus, Portfolio
from domain.trading.risk import risk_problem
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
    StrategyProgressed,
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
    account: str = ""
    """The account the configured strategy trades (settings' ``trading_account``)."""
    strategy: str = ""
    """That strategy (``trading_strategy``): only its progress moves that account's time."""


def mark_time(mark: Mark) -> int:
    """A mark's event time (its last trade's time), in microseconds."""
    return to_micros(mark.envelope.event_time)


def price_at(recent: list[Mark], time_us: int) -> Decimal:
    """The market price at an event time: the last mark at or before it, else the first
    after it (never the newest mark that happened to have arrived: that depends on when)."""
    before = [mark for mark in recent if mark_time(mark) <= time_us]
    return before[-1].price if before else recent[0].price


def remember_mark(marks: dict[str, list[Mark]], mark: Mark, keep: int,
                  forgotten_us: dict[str, int] | None = None) -> bool:
    """Add a mark to its symbol's recent marks (event-time order, the last ``keep``; the time
    of the newest one dropped goes to ``forgotten_us``); False if it was already there."""
    recent = marks.setdefault(mark.symbol, [])
    time_us = mark_time(mark)
    for kept in reversed(recent):  # a repeat has the same time: look back only that far
        if mark_time(kept) < time_us:
            break
        if kept.envelope.event_id == mark.envelope.event_id:
            return False
    recent.append(mark)
    if len(recent) > 1 and mark_time(recent[-2]) > mark_time(mark):
        recent.sort(key=lambda m: (m.envelope.event_time, m.last_trade_id))
    if len(recent) > keep:
        if forgotten_us is not None:
            forgotten_us[mark.symbol] = max(forgotten_us.get(mark.symbol, 0), mark_time(recent[-keep - 1]))
        del recent[:-keep]
    return True


class Emitter:
    """Builds events caused by one input and folds each into the state as it goes."""

    def __init__(self, state: Portfolio, config: TradingConfig, cause: Event) -> None:
        self.state, self.config, self.cause = state, config, cause
        self.events: list[Event] = []

    def envelope(self, cls: type[Event], event_id: str, time_us: int, order: Order | None = None,
                 causation_id: str | None = None) -> Envelope:
        """An envelope caused by this input, or (``order``) in that order's flow, caused by
        ``causation_id`` (default: the order's placement)."""
        cause = self.cause.envelope
        if order is not None:
            causation = causation_id or (order.event_ids[0] if order.event_ids else order.order_id)
            correlation = order.correlation_id or causation
        else:
            causation, correlation = cause.event_id, cause.correlation_id or cause.event_id
        return cls.envelope_for(event_time=from_micros(time_us), producer=self.config.producer, event_id=event_id,
                                causation_id=causation, correlation_id=correlation, ingest_time=cause.ingest_time)

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
            envelope=self.envelope(OrderExpired, derived_id(order.order_id, "expired"), deadline_us, order),
            order_id=order.order_id, account=self.state.account, symbol=order.symbol,
            filled_quantity=order.filled, remaining_quantity=order.remaining,
            deadline=from_micros(deadline_us)))


def limits_of(state: Portfolio, config: TradingConfig) -> RiskLimits:
    """The account's effective limits (configured, then user overrides)."""
    return config.limits.overridden(state.controls.limits)


def place(state: Portfolio, command: PlaceOrder, config: TradingConfig,
          marks: dict[str, list[Mark]], complete_from: tuple[str, int] | None = None) -> list[Event]:
    """Place an order (or deny it), then fill it against the marks after it
    (``marks``: each symbol's recent marks, oldest first; ``complete_from``: the symbol whose
    kept marks begin latest among those that dropped older ones, and that time: an order
    before it would be priced or filled against part of its market)."""
    out = Emitter(state, config, command)
    if command.order_id in state.orders:
        return []
    time_us = to_micros(command.envelope.event_time)
    prices = {s: p.last_price for s, p in state.positions.items() if p.last_price}
    prices.update({s: price_at(m, time_us) for s, m in marks.items() if m})
    with localcontext(EXACT):
        problem = risk_problem(state, command, limits_of(state, config), prices, config.order_timeout_us)
    if problem is None and complete_from is not None and complete_from[1] > time_us:
        symbol, since_us = complete_from
        problem = "stale_order", (f"placed at {from_micros(time_us).isoformat()}, before the marks of "
                                  f"{symbol} still kept (from {from_micros(since_us).isoformat()}): it would "
                                  "be priced or filled against part of its market")
    if problem is not None:
        out.deny(command.order_id, command.symbol, *problem, time_us)
        return out.events
    out.emit(OrderPlaced(
        envelope=out.envelope(OrderPlaced, derived_id(command.order_id, "placed"), time_us),
        order_id=command.order_id, account=state.account, symbol=command.symbol, side=command.side,
        order_type=command.order_type, quantity=command.quantity, limit_price=command.limit_price,
        strategy=command.strategy))
    _settle(out, command.symbol, marks.get(command.symbol, []))
    return out.events


def on_mark(state: Portfolio, mark: Mark, config: TradingConfig, recent: list[Mark] | None = None) -> list[Event]:
    """A new mark of a symbol (``recent``: the symbol's recent marks, oldest first, this one
    among them): fill and expire the symbol's open orders."""
    out = Emitter(state, config, mark)
    _settle(out, mark.symbol, [mark] if recent is None else recent)
    return out.events


def settle(state: Portfolio, config: TradingConfig, cause: Event, marks: dict[str, list[Mark]],
           until_us: int) -> list[Event]:
    """Fill and expire every symbol's open orders against its marks up to ``until_us``
    (``marks``: per symbol, oldest first); ``cause`` is the input that let time move on."""
    out = Emitter(state, config, cause)
    for symbol in sorted({o.symbol for o in state.open_orders()}):
        recent = marks.get(symbol, [])
        _settle(out, symbol, recent[:bisect.bisect_right(recent, until_us, key=mark_time)])
    return out.events


def marks_until(marks: dict[str, list[Mark]], until_us: int | None) -> dict[str, list[Mark]]:
    """Each symbol's marks up to ``until_us`` (all of them for None)."""
    if until_us is None:
        return marks
    return {s: m[:bisect.bisect_right(m, until_us, key=mark_time)] for s, m in marks.items()}


def _settle(out: Emitter, symbol: str, recent: list[Mark], as_of_us: int | None = None) -> None:
    """Fill the symbol's open orders against its recent marks, one order after another
    (oldest first); expire an order once the newest mark (or ``as_of_us``) reaches its
    deadline; a later order waits while an earlier one is open."""
    state, timeout = out.state, out.config.order_timeout_us
    newest = mark_time(recent[-1]) if recent else None  # how far the symbol's time has come
    if as_of_us is not None:
        newest = as_of_us if newest is None else max(newest, as_of_us)
    for order in sorted(state.open_orders(symbol), key=lambda o: (o.placed_us, o.order_id)):
        after_us = max(order.last_fill_us, _previous_done(state, order))
        deadline = order.placed_us + timeout
        for mark in recent[bisect.bisect_right(recent, after_us, key=mark_time):]:
            if order.status is not OrderStatus.OPEN or mark_time(mark) > deadline:
                break
            if after_us < mark_time(mark):
                _fill(out, order, mark)
                after_us = max(after_us, order.last_fill_us)
        if order.status is OrderStatus.OPEN:
            if newest is None or newest < deadline:
                return  # still working: the symbol's later orders wait for it
            out.close_expired(order, deadline)


def _previous_done(state: Portfolio, order: Order) -> int:
    """When the symbol's orders placed before this one were over (filled, expired, canceled)."""
    key = (order.placed_us, order.order_id)
    return max((o.closed_us for o in state.orders.values()
                if o.symbol == order.symbol and o.status is not OrderStatus.DENIED
                and (o.placed_us, o.order_id) < key), default=0)


def _fill(out: Emitter, order: Order, mark: Mark) -> None:
    config = out.config
    time_us = mark_time(mark)
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
        envelope=out.envelope(OrderFilled, derived_id(fill_id, "filled"), time_us, order, mark.envelope.event_id),
        order_id=order.order_id, account=out.state.account, symbol=order.symbol, side=Side(order.side),
        fill_id=fill_id, fill_quantity=quantity, fill_price=price, fee=fee,
        remaining_quantity=order.remaining - quantity, source_trade_id=mark.last_trade_id))
    position = out.state.position(order.symbol)
    out.emit(PositionChanged(
        envelope=out.envelope(PositionChanged, derived_id(fill_id, "position"), time_us, order,
                              out.events[-1].envelope.event_id),
        account=out.state.account, symbol=order.symbol, quantity=position.quantity,
        average_price=position.average_price, realised_pnl=position.realised, fees_paid=position.fees,
        order_id=order.order_id))


def expire(state: Portfolio, as_of_us: int, config: TradingConfig, cause: Event,
           marks: dict[str, list[Mark]]) -> list[Event]:
    """An expiry request (or a user command) at ``as_of_us``, the event time of ``cause``:
    every open order whose deadline (placed time + the timeout, event time) is at or before
    it is filled from its symbol's marks still due to it, then closed by OrderExpired."""
    out = Emitter(state, config, cause)
    for symbol in sorted({o.symbol for o in state.open_orders()}):
        _settle(out, symbol, marks.get(symbol, []), as_of_us)
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


def progress_record(account: str, symbol: str, strategy: str, through: datetime,
                    ingest_time: datetime) -> StrategyProgressed:
    """The strategy's progress on a symbol for an account's ledger (its id derives from
    what it says, so a re-sent one is the same record)."""
    event_id = derived_id(account, symbol, strategy, through.isoformat(), "progress")
    return StrategyProgressed(
        envelope=StrategyProgressed.envelope_for(event_time=through, producer=f"strategy.{strategy}",
                                                 event_id=event_id, ingest_time=ingest_time),
        account=account, symbol=symbol, strategy=strategy)


def account_of_order(order_id: str) -> str | None:
    """The account encoded in an order id made by ``order_for_signal`` (None otherwise)."""
    account, sep, _ = order_id.rpartition(":")
    return account if sep and account else None
