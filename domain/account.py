"""The ledger's fold over its input, trading.commands: one account's PlaceOrder, Mark,
ExpireOrders and user commands, in order (the one fold shape of domain.fold).

``evolve(account, item, config) -> (account, events)`` decides what the input means for
the account (domain.orders, domain.controls) and returns the trading events, already
folded into the account's ``Portfolio`` by ``domain.ledger.apply``: the projection of
trading.events that ``ticktide rebuild portfolio`` rebuilds with the same fold.

Time is the inputs' event time, never a clock, and a decision does not depend on how
the inputs of different sources interleave (live, or a replay at max speed where the
marks run minutes ahead of the orders): an order is decided as of its own event time
(domain.risk) and fills against its own symbol's marks, kept for it when they came first
(``KEEP_MARKS`` per symbol; an order older than the marks kept is denied, ``stale_order``,
rather than filled against part of its market); it expires when its own symbol's marks
reach its deadline, never on another symbol's. ExpireOrders closes every order due by
its event time: the ledger's timer sends it for accounts that get no input, and a user
command first does the same. Nothing is trusted for who sent it: a record's fields are
checked by its type's rules (domain.validity) before it gets here, and no input can do
more than its own type allows (an ExpireOrders, or any input, at most closes orders that
are due by its own validated event time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from domain import controls, orders
from domain.clock import to_micros
from domain.fold import Position
from domain.orders import TradingConfig
from domain.portfolio import Portfolio
from schemas.records import COMMAND_TYPES, Command, Event, ExpireOrders, Mark, PlaceOrder

KEEP_MARKS = 3600
"""Recent marks kept per account and symbol (what a new order can fill against): an hour
of one-second marks, how far the strategy may lag its symbol's marks (the candle fold of
a replay at max speed runs ahead of the enrichment)."""

Input = PlaceOrder | Mark | ExpireOrders | Command
"""What trading.commands carries."""
INPUT_TYPES = (PlaceOrder, Mark, ExpireOrders, *COMMAND_TYPES)


@dataclass(slots=True)
class Account:
    """One account as the ledger holds it: the portfolio (projection of its trading
    events), the latest market price per symbol, the latest input event time, and what
    was applied. ``marks`` (recent marks per symbol) and ``forgotten_us`` are kept in memory
    only: they change many times a second, and a restarted ledger fills against the marks
    that follow."""

    portfolio: Portfolio
    prices: dict[str, str] = field(default_factory=dict)
    seen_us: int = 0  # the latest event time of an input applied
    applied: Position = field(default_factory=Position)
    marks: dict[str, list[Mark]] = field(default_factory=dict)
    forgotten_us: dict[str, int] = field(default_factory=dict)  # per symbol, the newest mark dropped

    @classmethod
    def open(cls, account: str, initial_cash: Decimal) -> Account:
        """A new account holding only cash."""
        return cls(Portfolio.open(account, initial_cash))


def evolve(state: Account, item: Input, config: TradingConfig) -> tuple[Account, list[Event]]:
    """Decide one input: an order is placed (or denied) and filled against its symbol's
    marks so far; a mark fills and expires its symbol's orders; an expiry request or a user
    command first expires every order due by its event time."""
    if not isinstance(item, INPUT_TYPES):
        raise TypeError(f"not a trading.commands record: {type(item).__name__}")
    portfolio = state.portfolio
    time_us = to_micros(item.envelope.event_time)
    state.seen_us = max(state.seen_us, time_us)
    if isinstance(item, PlaceOrder):
        return state, orders.place(portfolio, item, config, state.marks, state.forgotten_us.get(item.symbol))
    if isinstance(item, Mark):
        if not orders.remember_mark(state.marks, item, KEEP_MARKS, state.forgotten_us):
            return state, []
        state.prices[item.symbol] = str(item.price)
        return state, orders.on_mark(portfolio, item, config, state.marks[item.symbol])
    events = orders.expire(portfolio, time_us, config, item, state.marks)
    if not isinstance(item, ExpireOrders):
        events += controls.command(portfolio, item, config, state.marks)
    return state, events


def decider(config: TradingConfig) -> Callable[[Account, Input], tuple[Account, list[Event]]]:
    """``evolve`` with the paper broker's configuration: what ``domain.fold.step`` drives."""

    def decide(state: Account, item: Input) -> tuple[Account, list[Event]]:
        return evolve(state, item, config)

    return decide


def idle_expiry_time(state: Account, idle_us: int, config: TradingConfig) -> int | None:
    """The event time of an ExpireOrders for an account that got no input for ``idle_us``
    (wall time): its latest input time moved on by the idle time, if that makes an open
    order due; else None (nothing to ask)."""
    as_of = state.seen_us + idle_us
    due = [o for o in state.portfolio.open_orders() if o.placed_us + config.order_timeout_us <= as_of]
    return as_of if due else None
