"""The ledger's fold over its input, trading.commands: one account's PlaceOrder, Mark,
ExpireOrders, user commands and StrategyProgressed, in order (the one fold shape of
domain.fold).

``evolve(account, item, config) -> (account, events)`` decides what the input means for
the account (domain.trading.orders, domain.trading.controls) and returns the trading events, already
folded into the account's ``Portfolio`` by ``domain.trading.ledger.apply``: the projection of
trading.events that ``ticktide rebuild portfolio`` rebuilds with the same fold.

Time is the inputs' event time, never a clock, and a decision does not depend on how
the inputs of different sources interleave (live, or a replay at max speed where the
marks run minutes ahead of the orders). The account is decided in event time up to its
``through_us``: the time the strategy of every symbol it has a market for has progressed
to (StrategyProgressed, which follows the symbol's orders up to that time and, as the
strategy decides on closed candles, the symbol's marks too; see ``decided_to``). A symbol
whose marks came but whose strategy has not reported yet holds the account where it is:
its first orders may be older than the other symbols' progress. An order or a user
command later than that is held and decided once every strategy has passed its time,
held inputs in event-time order (a command before an order at the same time, then by
id); a mark later than that is kept and fills only once the account's time reaches it.
So an order's risk checks see every order, fill and command before its time and none
after, whatever symbol they are of, and a command acts on the orders and fills as they
stood at its time. An input at or before ``through_us`` (one that comes late) is decided
when it arrives; so is everything of an account no strategy reports progress to
(``progress`` empty), which it is until the first order or progress of its configured
strategy: from then on, in event time.

An ExpireOrders at time T says that the account's time has come to T: what was held up
to T is decided, then every order due by T is closed, and a strategy that had not come
that far (or had not reported) is not waited for until it reports again (``GONE``). The
ledger's timer sends one for an account that got no input for a while (the feed has
ended) and for one whose strategies have gone silent while inputs wait (see
``idle_expiry_time``): the one wall-clock decision, and it decides only when, never the
time asked for.

An order fills against its own symbol's marks, kept for it when they came first
(``KEEP_MARKS`` per symbol; once strategies report, only those a decision can still use:
see ``_prune``; an order older than the marks kept is denied, ``stale_order``, rather than
priced or filled against part of its market); it expires when its own symbol's marks
reach its deadline, never on another symbol's. The marks are part of the state (and of
the ledger's row), so a ledger restarted from its row decides like one that never stopped.

Nothing is trusted for who sent it: a record's fields are checked by its type's rules
(domain.rules.validity) before it gets here, and no input can do more than its own type allows
(an ExpireOrders, or any input, at most closes orders that are due by its own validated
event time). A StrategyProgressed counts only for what it can speak for: the configured
strategy of this account (``TradingConfig.account``/``strategy``), on a symbol the account
has a market for (a mark came); any other is ignored. A symbol's progress only moves on
and the account's time never goes back, so a forged or stray one cannot take back what
was decided (one for a symbol that had not reported can at most hold the account, as
the symbol's silence did).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from domain.clock import to_micros
from domain.fold import Position
from domain.trading import controls, orders
from domain.trading.orders import TradingConfig
from domain.trading.portfolio import Portfolio
from schemas.records import COMMAND_TYPES, Command, Event, ExpireOrders, Mark, PlaceOrder, StrategyProgressed

KEEP_MARKS = 3600
"""Most recent marks kept per account and symbol (what a new order can fill against): an
hour of one-second marks, how far the strategy may lag its symbol's marks (the candle fold
of a replay at max speed runs ahead of the enrichment)."""

LATE_REACH_US = 60_000_000
"""Once strategies report progress, how far before the account's time a late order (of a
strategy not reporting yet, or no longer) is still priced and filled against its market:
older marks are dropped as the account's time moves on; an order before the marks kept
is denied ``stale_order``."""

GONE = -1
"""The progress of a symbol whose strategy an ExpireOrders took as gone: the account is not
held for it until it reports again."""

MAX_HELD = 10_000
"""Most orders and commands held per account; past it the oldest is decided (a guard)."""

Input = PlaceOrder | Mark | ExpireOrders | Command | StrategyProgressed
"""What trading.commands carries."""
INPUT_TYPES = (PlaceOrder, Mark, ExpireOrders, *COMMAND_TYPES, StrategyProgressed)
Held = PlaceOrder | Command


@dataclass(slots=True)
class Account:
    """One account as the ledger holds it: the portfolio (projection of its trading
    events), the latest market price per symbol, the latest input event time, what was
    applied, how far it is decided in event time (each symbol's strategy progress, the
    account's time, the orders and commands waiting for it), and the recent marks per
    symbol a decision can still use (with, per symbol that dropped older ones, the time of
    the newest dropped). All of it is in the ledger's row (tables/trading.py), so a
    restarted ledger decides as one that never stopped."""

    portfolio: Portfolio
    prices: dict[str, str] = field(default_factory=dict)
    seen_us: int = 0  # the latest event time of an input applied
    applied: Position = field(default_factory=Position)
    marks: dict[str, list[Mark]] = field(default_factory=dict)
    forgotten_us: dict[str, int] = field(default_factory=dict)  # per symbol, the newest mark dropped
    progress: dict[str, int] = field(default_factory=dict)  # per symbol, how far its strategy decided (or GONE)
    through_us: int = 0  # the account is decided in event time up to here
    held: list[Held] = field(default_factory=list)  # orders and commands after through_us, in order

    @property
    def until_us(self) -> int | None:
        """How far the account may decide now (None: as inputs come, no strategy reports)."""
        return self.through_us if self.reporting() else None

    def reporting(self) -> bool:
        """Whether a strategy reports its progress: the account is decided in event time."""
        return any(p != GONE for p in self.progress.values())

    def waiting(self) -> bool:
        """Whether inputs wait for a strategy's progress (held, or marks past the account's time)."""
        return self.reporting() and (bool(self.held) or self.seen_us > self.through_us)

    @classmethod
    def open(cls, account: str, initial_cash: Decimal) -> Account:
        """A new account holding only cash."""
        return cls(Portfolio.open(account, initial_cash))


def evolve(state: Account, item: Input, config: TradingConfig) -> tuple[Account, list[Event]]:
    """Decide one input (see the module's doc): hold or decide an order or a command, keep a
    mark and fill with it once its time has come, move the account's time on with a
    strategy's progress or an expiry request."""
    if not isinstance(item, INPUT_TYPES):
        raise TypeError(f"not a trading.commands record: {type(item).__name__}")
    time_us = to_micros(item.envelope.event_time)
    if isinstance(item, StrategyProgressed):
        if not speaks_for(state, item, config):
            return state, []
        state.seen_us = max(state.seen_us, time_us)
        state.progress[item.symbol] = max(state.progress.get(item.symbol, time_us), time_us)
        return state, _advance(state, config, decided_to(state), item)
    state.seen_us = max(state.seen_us, time_us)
    if isinstance(item, PlaceOrder) and item.symbol not in state.progress and speaks_for(state, item, config):
        state.progress[item.symbol] = 0  # its strategy's progress follows: decided in event time from here
    if isinstance(item, Mark):
        if not orders.remember_mark(state.marks, item, KEEP_MARKS, state.forgotten_us):
            return state, []
        state.prices[item.symbol] = str(item.price)
        until = state.until_us
        if until is not None and time_us > until:
            return state, []  # fills once the account's time reaches it
        recent = orders.marks_until({item.symbol: state.marks[item.symbol]}, until)[item.symbol]
        return state, orders.on_mark(state.portfolio, item, config, recent)
    if isinstance(item, ExpireOrders):
        events = _advance(state, config, time_us, item)
        if state.progress:  # strategies that had not come this far are gone until they report again
            behind = sorted(s for s in state.progress.keys() | state.prices.keys()
                            if state.progress.get(s, GONE) < time_us)
            state.progress.update(dict.fromkeys(behind, GONE))
        return state, events + orders.expire(state.portfolio, time_us, config, item,
                                             orders.marks_until(state.marks, state.until_us))
    until = state.until_us
    if until is not None and time_us > until:
        return state, _hold(state, item, config)
    return state, _decide(state, item, config, until)


def speaks_for(state: Account, item: StrategyProgressed | PlaceOrder, config: TradingConfig) -> bool:
    """Whether a progress record (or an order) is of the strategy configured for this
    account, on a symbol the account has a market for (its marks came first, as the
    strategy decides on candles of the same trades): its progress may move the account's
    time. Not from who says it sent it."""
    return (item.account == state.portfolio.account == config.account and item.strategy == config.strategy
            and item.symbol in state.prices)


def decided_to(state: Account) -> int:
    """How far every symbol with a market is decided: its strategy's least progress, never
    past a market whose strategy has not reported yet (the account waits for it: its first
    orders may be older than the others' progress), nor one still behind the account's
    time (it rejoined); a strategy taken as gone is not waited for."""
    if not state.prices.keys() <= state.progress.keys():
        return state.through_us
    least = least_progress(state.progress)
    return state.through_us if least is None else least


def reach_from(state: Account) -> int:
    """Once strategies report, the earliest time a decision still to come may need the
    marks from: ``LATE_REACH_US`` before the account's time or before the least progress of
    a reporting strategy (a strategy's next orders are no older than its progress)."""
    least = least_progress(state.progress)
    return (state.through_us if least is None else min(state.through_us, least)) - LATE_REACH_US


def least_progress(progress: dict[str, int]) -> int | None:
    """The least progress of a strategy not taken as gone (None: none reports). Both callers
    run for every progress record, over every symbol: the plain ``min`` runs in C, and only
    a gone strategy (``GONE`` is below any progress) needs the filtered one."""
    least = min(progress.values(), default=None)
    if least != GONE:
        return least
    return min((p for p in progress.values() if p != GONE), default=None)


def _order_key(item: Held) -> tuple[int, int, str]:
    """Held inputs are decided by event time, a command before an order at the same time."""
    return to_micros(item.envelope.event_time), 1 if isinstance(item, PlaceOrder) else 0, item.envelope.event_id


def _hold(state: Account, item: Held, config: TradingConfig) -> list[Event]:
    if any(h.envelope.event_id == item.envelope.event_id for h in state.held):
        return []  # a repeat
    bisect.insort(state.held, item, key=_order_key)
    if len(state.held) <= MAX_HELD:
        return []
    return _advance(state, config, to_micros(state.held[0].envelope.event_time), state.held[0])


def _advance(state: Account, config: TradingConfig, to_us: int, cause: Event) -> list[Event]:
    """Move the account's time on to ``to_us``: the held inputs up to it in order, each after
    the marks before it, then the marks up to it."""
    if to_us <= state.through_us:
        return []
    due = [h for h in state.held if to_micros(h.envelope.event_time) <= to_us]
    del state.held[:len(due)]
    events: list[Event] = []
    for item in due:
        at_us = to_micros(item.envelope.event_time)
        events += orders.settle(state.portfolio, config, item, state.marks, at_us)
        events += _decide(state, item, config, at_us)
    state.through_us = to_us
    events += orders.settle(state.portfolio, config, cause, state.marks, to_us)
    _prune(state)
    return events


def _prune(state: Account) -> None:
    """Drop the marks no decision can use any more, now that the account is decided up to
    ``through_us``: per symbol, those before both ``reach_from`` and its oldest open order,
    but the newest of them (the price then). What a held or later order, an open
    order's fills or a late order within the reach needs stays (and so the row stays small)."""
    if not state.reporting():
        return  # decided as inputs come: KEEP_MARKS alone bounds them
    horizon = reach_from(state)
    floors: dict[str, int] = {}
    for order in state.portfolio.open_orders():
        floors[order.symbol] = min(floors.get(order.symbol, horizon), order.placed_us)
    for symbol, recent in state.marks.items():
        cut = bisect.bisect_left(recent, floors.get(symbol, horizon), key=orders.mark_time) - 1
        if cut > 0:
            state.forgotten_us[symbol] = max(state.forgotten_us.get(symbol, 0), orders.mark_time(recent[cut - 1]))
            del recent[:cut]


def complete_from(state: Account, symbol: str) -> tuple[str, int] | None:
    """From when an order of ``symbol`` is priced and filled against its whole market, and
    the symbol that says so: among those that dropped older marks, the one whose kept marks
    begin latest; once strategies report, no earlier than ``reach_from`` (however far
    ``_prune`` has come, so a late order is decided alike)."""
    starts = [(orders.mark_time(recent[0]), s) for s, recent in state.marks.items()
              if recent and s in state.forgotten_us]
    if state.reporting():
        starts.append((reach_from(state), symbol))
    if not starts:
        return None
    since_us, named = max(starts)
    return named, since_us


def _decide(state: Account, item: Held, config: TradingConfig, until_us: int | None) -> list[Event]:
    """An order or a command against the marks up to ``until_us``."""
    marks = orders.marks_until(state.marks, until_us)
    if isinstance(item, PlaceOrder):
        return orders.place(state.portfolio, item, config, marks, complete_from(state, item.symbol))
    time_us = to_micros(item.envelope.event_time)
    return orders.expire(state.portfolio, time_us, config, item, marks) + controls.command(
        state.portfolio, item, config, marks)


def decider(config: TradingConfig) -> Callable[[Account, Input], tuple[Account, list[Event]]]:
    """``evolve`` with the paper broker's configuration: what ``domain.fold.step`` drives."""

    def decide(state: Account, item: Input) -> tuple[Account, list[Event]]:
        return evolve(state, item, config)

    return decide


@dataclass(frozen=True, slots=True)
class Patience:
    """How long (wall clock, microseconds) the ledger's timer lets the account be: with no
    input at all (the feed has ended), and while inputs come but the account's time does
    not move as inputs wait for a strategy's progress (a strategy has gone silent)."""

    idle_us: int
    stalled_us: int


def idle_expiry_time(state: Account, idle_us: int, stalled_us: int, patience: Patience,
                     config: TradingConfig) -> int | None:
    """The event time of an ExpireOrders the ledger's timer sends, or None: nothing to ask.
    Wall time decides only when, never the time asked for, and only past ``patience``:

    * inputs wait for a strategy's progress, and the account got no input for
      ``patience.idle_us`` or its time has not moved for ``patience.stalled_us``: the
      latest input time (the silent strategies are taken as gone up to it);
    * nothing waits and no input came for ``patience.idle_us`` (the feed has ended): the
      latest deadline of its open orders, which then close as their market would have.

    Never the latest input time moved on by the idle time: an open order expires by its
    own symbol's marks, and a pause of the feed (a replay at max speed idles where live did
    not, and the other way round) must not expire it ahead of the marks still to come."""
    if state.waiting():
        return state.seen_us if idle_us >= patience.idle_us or stalled_us >= patience.stalled_us else None
    open_orders = state.portfolio.open_orders()
    if idle_us < patience.idle_us or not open_orders:
        return None
    return max(o.placed_us for o in open_orders) + config.order_timeout_us
