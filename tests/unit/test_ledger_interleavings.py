"""The paper ledger decides the same whatever the interleaving of its inputs (issue 13).

Live, marks and orders reach the ledger in one interleaving; a backtest at max speed, with
the marks minutes ahead of the orders, in another. Each source keeps its own order (a
symbol's marks in event time, a symbol's orders in event time, an order after the marks of
its symbol up to its time), and the ledger must give the same trading events (ids, values,
lineage) and the same portfolio for every such interleaving.

With the strategy's progress (StrategyProgressed after its orders of each snapshot) the
account is decided in event time, so this holds too where limits across symbols (orders
per minute, gross exposure) bind and with user commands (kill switch, pause, limits,
flatten) interleaved, as long as a command reaches the ledger before every strategy has
progressed past its time (live it comes within milliseconds, the strategy seconds after
the market; a replay merges it by event time ahead of the strategies' lag). Without
progress (an account no strategy reports to) inputs are decided as they come: the first
test keeps those limits loose."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.clock import from_micros, to_micros
from domain.fold import step
from domain.parity import comparable
from domain.trading import ledger_rows
from domain.trading.account import (
    KEEP_MARKS,
    LATE_REACH_US,
    Account,
    Input,
    Patience,
    decider,
    evolve,
    idle_expiry_time,
)
from domain.trading.orders import RiskLimits, TradingConfig
from domain.trading.portfolio import OrderStatus
from schemas.records import (
    EngageKillSwitch,
    Event,
    ExpireOrders,
    FlattenPosition,
    Mark,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderPlaced,
    OrderType,
    PauseStrategy,
    PlaceOrder,
    ReleaseKillSwitch,
    ResumeStrategy,
    SetRiskLimit,
    Side,
    StrategyProgressed,
)
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry
from tables.trading import account_row, load_account

T0 = datetime(2024, 7, 19, 12, tzinfo=UTC)
CONFIG = TradingConfig(
    limits=RiskLimits(max_position=Decimal(5), max_gross_exposure=Decimal(10**12), max_orders_per_minute=1000),
    fee_bps=Decimal(10), slippage_bps=Decimal(5), participation=Decimal("0.5"), order_timeout_us=30_000_000,
    account="acct")
"""An account no strategy reports progress to: its inputs are decided as they come."""
REPORTED = dataclasses.replace(CONFIG, strategy="ema_cross")
"""The account of the configured strategy (its orders' ``strategy``): decided in event time."""


def mark(symbol: str, n: int, at: datetime, price: Decimal, size: Decimal) -> Mark:
    return Mark(envelope=Mark.envelope_for(event_time=at, producer="test", event_id=f"mark-{symbol}-{n}"),
                symbol=symbol, price=price, size=size, trade_count=1, last_trade_id=n, slice_start=at)


def order(symbol: str, n: int, at: datetime, side: Side, quantity: Decimal) -> PlaceOrder:
    signal = f"signal-{symbol}-{n}"
    return PlaceOrder(
        envelope=PlaceOrder.envelope_for(event_time=at, producer="strategy.ema_cross", event_id=f"cmd-{symbol}-{n}",
                                         causation_id=signal, correlation_id=signal, ingest_time=at),
        order_id=f"acct:{symbol}-{n}", account="acct", symbol=symbol, side=side, order_type=OrderType.MARKET,
        quantity=quantity, strategy="ema_cross")


def decide(inputs: list[Input]) -> tuple[Account, list[Event]]:
    """The ledger's fold over the inputs in this order, as the agent drives it; every event."""
    state, emitted = Account.open("acct", Decimal(100_000)), []
    for offset, item in enumerate(inputs):
        state, events = step(decider(CONFIG), state, item, 0, offset)
        emitted += events
    return state, emitted


def published(events: list[Event]) -> dict[str, dict[str, Any]]:
    """Events by id, as ``ticktide parity`` compares them; an id never comes with two values."""
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        assert found.setdefault(event.envelope.event_id, comparable(event)) == comparable(event)
    return found


amounts = st.sampled_from([Decimal("0.2"), Decimal("0.5"), Decimal(1), Decimal(2), Decimal(3)])
prices = st.sampled_from([Decimal(95), Decimal(100), Decimal("100.5"), Decimal(104)])
marks_of = st.lists(st.tuples(st.integers(100, 6_000), prices, amounts), max_size=25)  # (gap ms, price, size)
orders_of = st.lists(st.tuples(st.integers(200, 25_000), st.sampled_from([Side.BUY, Side.SELL]),
                               st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(2), Decimal(4)])), max_size=8)
markets = st.lists(st.tuples(marks_of, orders_of), min_size=2, max_size=3)


def sources(market: list[tuple[Any, Any]]) -> tuple[list[Input], list[list[Input]]]:
    """The opening marks (every symbol priced before any order), then per symbol its marks
    and its orders, each in event-time order."""
    opening: list[Input] = []
    queues: list[list[Input]] = []
    for s, (mark_script, order_script) in enumerate(market):
        symbol = ("BTC", "ETH", "SOL")[s]
        opening.append(mark(symbol, 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)))
        at, marks = T0, []
        for n, (gap_ms, price, size) in enumerate(mark_script, start=1):
            at += timedelta(milliseconds=gap_ms)
            marks.append(mark(symbol, n, at, price, size))
        at, placed = T0, []
        for n, (gap_ms, side, quantity) in enumerate(order_script):
            at += timedelta(milliseconds=gap_ms)
            placed.append(order(symbol, n, at, side, quantity))
        queues += [marks, placed]
    return opening, queues


def waits_for_marks(queues: list[list[Input]], heads: list[int], q: int) -> bool:
    """Whether the next input of strategy queue ``q`` must wait: a mark of its symbol (queue
    ``q - 1``) at or before its time has not been delivered yet."""
    at = queues[q][heads[q]].envelope.event_time
    return any(m.envelope.event_time <= at for m in queues[q - 1][heads[q - 1]:])


def interleave(queues: list[list[Input]], data: st.DataObject) -> list[Input]:
    """One interleaving: each queue keeps its order, and an order comes after every mark of
    its symbol up to its time (the strategy decides on closed candles); how far behind is drawn."""
    heads, merged = [0] * len(queues), []
    while True:
        ready = []
        for q, queue in enumerate(queues):
            if heads[q] == len(queue):
                continue
            if not (isinstance(queue[heads[q]], PlaceOrder) and waits_for_marks(queues, heads, q)):
                ready.append(q)
        if not ready:
            return merged
        q = ready[data.draw(st.integers(0, len(ready) - 1))]
        merged.append(queues[q][heads[q]])
        heads[q] += 1


def expire_all(inputs: list[Input]) -> ExpireOrders:
    """What the idle timer sends once everything is in: every order is due by then."""
    last = max(i.envelope.event_time for i in inputs)
    return ExpireOrders(envelope=ExpireOrders.envelope_for(event_time=last + timedelta(hours=1), producer="timer",
                                                           event_id="x-end"), account="acct")


@settings(max_examples=100, deadline=None)
@given(markets, st.data())
def test_every_interleaving_gives_the_same_trading_events_and_the_same_portfolio(
        market: list[tuple[Any, Any]], data: st.DataObject) -> None:
    opening, queues = sources(market)
    runs = []
    for _ in range(3):
        inputs = [*opening, *interleave(queues, data)]
        runs.append(decide([*inputs, expire_all(inputs)]))
    (first, first_events), *others = runs
    for state, events in others:
        assert published(events) == published(first_events)
        assert ledger_rows.to_row(state.portfolio) == ledger_rows.to_row(first.portfolio)
    assert first.portfolio.open_orders() == []  # the last request closed what was left


def test_an_earlier_order_counts_against_the_limit_until_its_deadline_even_if_it_expired_before_arriving() -> None:
    """Live, the second order comes while the first still works (3 of 4 unfilled): with it,
    the position could reach 6 > 5, denied. In a backtest the marks past the first one's
    deadline may already be in (it expired, 1 filled): the second is still denied."""
    btc = [mark("BTC", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
           mark("BTC", 1, T0 + timedelta(seconds=1), Decimal(100), Decimal(2))]  # fills 1 of the first
    first = order("BTC", 1, T0, Side.BUY, Decimal(4))
    second = order("BTC", 2, T0 + timedelta(seconds=10), Side.BUY, Decimal(2))
    past = mark("BTC", 2, T0 + timedelta(seconds=40), Decimal(100), Decimal("0.01"))
    _, live = decide([btc[0], first, btc[1], second, past])
    _, backtest = decide([*btc, past, first, second])
    for events in (live, backtest):
        denied = [e for e in events if isinstance(e, OrderDenied)]
        assert [(e.order_id, e.reason_code) for e in denied] == [("acct:BTC-2", "max_position")]
    assert published(live) == published(backtest)


def test_marks_are_kept_for_an_order_that_lags_its_market_by_many_minutes() -> None:
    """At max speed the candle fold runs far ahead of the strategy: an order decided on a
    candle twenty minutes back still fills against the marks after it, as live."""
    marks = [mark("BTC", n, T0 + timedelta(seconds=n), Decimal(100 + n % 7), Decimal("0.5")) for n in range(1, 1201)]
    late = order("BTC", 1, T0 + timedelta(seconds=100), Side.BUY, Decimal(1))
    _, in_time = decide([*marks[:100], late, *marks[100:]])
    _, lagging = decide([*marks, late])
    fills = [e for e in lagging if isinstance(e, OrderFilled)]
    assert len(fills) == 4 and fills[0].envelope.causation_id == "mark-BTC-101"  # 0.25 from each mark after it
    assert published(lagging) == published(in_time)


def test_an_order_older_than_the_marks_kept_is_denied_not_filled_against_part_of_its_market() -> None:
    marks = [mark("BTC", n, T0 + timedelta(seconds=n), Decimal(100), Decimal(1)) for n in range(1, KEEP_MARKS + 101)]
    stale = order("BTC", 1, T0 + timedelta(seconds=50), Side.BUY, Decimal(1))
    recent = order("BTC", 2, T0 + timedelta(seconds=KEEP_MARKS + 50), Side.BUY, Decimal("0.5"))
    state, events = decide([*marks, stale, recent])
    denied = [e for e in events if isinstance(e, OrderDenied)]
    assert [(e.order_id, e.reason_code) for e in denied] == [("acct:BTC-1", "stale_order")]
    assert "marks of BTC" in denied[0].reason
    assert state.portfolio.orders["acct:BTC-2"].status is OrderStatus.FILLED


BINDING = TradingConfig(
    limits=RiskLimits(max_position=Decimal(5), max_gross_exposure=Decimal(700), max_orders_per_minute=3),
    fee_bps=Decimal(10), slippage_bps=Decimal(5), participation=Decimal("0.5"), order_timeout_us=30_000_000,
    account="acct", strategy="ema_cross")


def progressed(symbol: str, at: datetime) -> StrategyProgressed:
    return StrategyProgressed(envelope=StrategyProgressed.envelope_for(
        event_time=at, producer="agent.trading", event_id=f"progress-{symbol}-{at.isoformat()}"),
        account="acct", symbol=symbol, strategy="ema_cross")


COMMANDS = {
    "kill": lambda e, s: EngageKillSwitch(envelope=e, user="u", account="acct"),
    "release": lambda e, s: ReleaseKillSwitch(envelope=e, user="u", account="acct"),
    "pause": lambda e, s: PauseStrategy(envelope=e, user="u", account="acct", strategy="ema_cross"),
    "resume": lambda e, s: ResumeStrategy(envelope=e, user="u", account="acct", strategy="ema_cross"),
    "tight": lambda e, s: SetRiskLimit(envelope=e, user="u", account="acct", limit="max_position", value=Decimal(1)),
    "loose": lambda e, s: SetRiskLimit(envelope=e, user="u", account="acct", limit="max_position", value=Decimal(5)),
    "flatten": lambda e, s: FlattenPosition(envelope=e, user="u", account="acct", symbol=s),
}
commands_of = st.lists(st.tuples(st.integers(500, 20_000), st.sampled_from(sorted(COMMANDS)),
                                 st.sampled_from(["BTC", "ETH"])), max_size=5)


def strategy_sources(market: list[tuple[Any, Any]], script: list[tuple[int, str, str]], reporting: int = 3,
                     ) -> tuple[list[Input], list[list[Input]], list[Input]]:
    """As ``sources``, but each symbol's orders come with its strategy's progress: after
    every order at its time and at every mark's time (a snapshot decided with no order),
    and, for the first ``reporting`` symbols, at the opening (the others' strategies report
    first with their first decision); and the user's commands, in their time order."""
    opening, queues = sources(market)
    symbols = ("BTC", "ETH", "SOL")[:len(market)]
    opening += [progressed(symbol, T0 - timedelta(seconds=1)) for symbol in symbols[:reporting]]
    for s in range(len(market)):
        marks, placed = queues[2 * s], queues[2 * s + 1]
        times = sorted({m.envelope.event_time for m in marks} | {o.envelope.event_time for o in placed})
        decided: list[Input] = []
        for at in times:
            decided += [o for o in placed if o.envelope.event_time == at]
            decided.append(progressed(symbols[s], at))
        queues[2 * s + 1] = decided
    at, commands = T0, []
    for n, (gap_ms, kind, symbol) in enumerate(script):
        at += timedelta(milliseconds=gap_ms)
        envelope = EngageKillSwitch.envelope_for(event_time=at, producer="user", event_id=f"user-{n}")
        commands.append(COMMANDS[kind](envelope, symbol))
    return opening, queues, commands


def interleave_timely(queues: list[list[Input]], commands: list[Input], data: st.DataObject) -> list[Input]:
    """One interleaving as ``interleave`` (a strategy's orders and progress after its
    symbol's marks up to their time), with each user command arriving before every
    strategy has progressed past its time."""
    progress = {q: T0 - timedelta(seconds=1) for q in range(1, len(queues), 2)}
    heads, merged, next_command = [0] * len(queues), [], 0
    while True:
        ready = []
        for q, queue in enumerate(queues):
            if heads[q] == len(queue):
                continue
            item = queue[heads[q]]
            if q % 2 and waits_for_marks(queues, heads, q):
                continue
            if isinstance(item, StrategyProgressed) and next_command < len(commands):
                after = min({**progress, q: item.envelope.event_time}.values())
                if after >= commands[next_command].envelope.event_time:
                    continue  # the command is due first
            ready.append(q)
        if next_command < len(commands):
            ready.append(-1)
        if not ready:
            return merged
        q = ready[data.draw(st.integers(0, len(ready) - 1))]
        if q == -1:
            merged.append(commands[next_command])
            next_command += 1
            continue
        item = queues[q][heads[q]]
        if isinstance(item, StrategyProgressed):
            progress[q] = item.envelope.event_time
        merged.append(item)
        heads[q] += 1


def decide_with(config: TradingConfig, inputs: list[Input]) -> tuple[Account, list[Event]]:
    state, emitted = Account.open("acct", Decimal(100_000)), []
    for offset, item in enumerate(inputs):
        state, events = step(decider(config), state, item, 0, offset)
        emitted += events
    return state, emitted


@settings(max_examples=100, deadline=None)
@given(markets, commands_of, st.integers(1, 3), st.data())
def test_every_interleaving_decides_alike_where_cross_symbol_limits_bind_and_with_user_commands(
        market: list[tuple[Any, Any]], script: list[tuple[int, str, str]], reporting: int,
        data: st.DataObject) -> None:
    """Also where some symbols' strategies report only from their first decision on (they
    started later, or lag): the account waits for every symbol it has a market for."""
    opening, queues, commands = strategy_sources(market, script, reporting)
    runs = []
    for _ in range(3):
        inputs = [*opening, *interleave_timely(queues, commands, data)]
        runs.append(decide_with(BINDING, [*inputs, expire_all(inputs)]))
    (first, first_events), *others = runs
    for state, events in others:
        assert published(events) == published(first_events)
        assert ledger_rows.to_row(state.portfolio) == ledger_rows.to_row(first.portfolio)
    assert first.portfolio.open_orders() == [] and first.held == []  # nothing is left waiting


def test_orders_of_two_symbols_count_against_the_limit_in_event_time_not_as_they_arrive() -> None:
    """ETH's strategy lags BTC's: BTC's order at 0:40 arrives before ETH's at 0:10. Of
    three orders with a limit of two a minute, the last in event time is denied (BTC's),
    whichever arrived last."""
    config = TradingConfig(limits=dataclasses.replace(BINDING.limits, max_orders_per_minute=2),
                           fee_bps=Decimal(0), slippage_bps=Decimal(0), participation=Decimal(1),
                           order_timeout_us=30_000_000, account="acct", strategy="ema_cross")
    opening = [mark("BTC", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
               mark("ETH", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
               progressed("BTC", T0 - timedelta(seconds=1)), progressed("ETH", T0 - timedelta(seconds=1))]
    btc = [order("BTC", 1, T0 + timedelta(seconds=5), Side.BUY, Decimal("0.1")),
           progressed("BTC", T0 + timedelta(seconds=5)),
           order("BTC", 2, T0 + timedelta(seconds=40), Side.BUY, Decimal("0.1")),
           progressed("BTC", T0 + timedelta(seconds=40))]
    eth = [order("ETH", 1, T0 + timedelta(seconds=10), Side.BUY, Decimal("0.1")),
           progressed("ETH", T0 + timedelta(seconds=50))]
    _, live = decide_with(config, [*opening, btc[0], btc[1], eth[0], btc[2], btc[3], eth[1]])
    _, lagging = decide_with(config, [*opening, *btc, *eth])
    for events in (live, lagging):
        denied = [(e.order_id, e.reason_code) for e in events if isinstance(e, OrderDenied)]
        assert denied == [("acct:BTC-2", "max_orders_per_minute")]
    assert published(live) == published(lagging)


def test_a_kill_switch_replayed_ahead_of_the_strategy_denies_only_the_orders_after_its_time() -> None:
    """In a backtest the user's EngageKillSwitch (merged by event time) reaches the ledger
    before the orders the strategy decided just before it: those are placed, as live."""
    opening = [mark("BTC", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)), progressed("BTC", T0)]
    kill = EngageKillSwitch(envelope=EngageKillSwitch.envelope_for(
        event_time=T0 + timedelta(seconds=20), producer="user", event_id="user-kill"), user="u", account="acct")
    before = order("BTC", 1, T0 + timedelta(seconds=10), Side.BUY, Decimal(1))
    after = order("BTC", 2, T0 + timedelta(seconds=30), Side.BUY, Decimal(1))
    strategy = [before, progressed("BTC", T0 + timedelta(seconds=10)), after,
                progressed("BTC", T0 + timedelta(seconds=30))]
    _, live = decide_with(REPORTED, [*opening, strategy[0], strategy[1], kill, *strategy[2:]])
    _, backtest = decide_with(REPORTED, [*opening, kill, *strategy])
    for events in (live, backtest):
        denied = [(e.order_id, e.reason_code) for e in events if isinstance(e, OrderDenied)]
        assert denied == [("acct:BTC-2", "kill_switch")]
        assert [e.order_id for e in events if isinstance(e, OrderCanceled)] == ["acct:BTC-1"]
    assert published(live) == published(backtest)


def test_a_silent_strategy_holds_the_account_until_the_timer_says_it_is_gone_then_the_others_go_on() -> None:
    """ETH's strategy stops reporting. BTC's orders wait for it; the timer's ExpireOrders at
    the latest input time decides them, and from then on BTC's orders go by BTC's progress
    alone; ETH rejoins when it reports again."""
    patience = Patience(idle_us=20_000_000, stalled_us=140_000_000)
    inputs: list[Input] = [mark("BTC", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
                           mark("ETH", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
                           progressed("BTC", T0), progressed("ETH", T0),
                           order("BTC", 1, T0 + timedelta(seconds=5), Side.BUY, Decimal(1)),
                           progressed("BTC", T0 + timedelta(seconds=5))]
    state, events = decide_with(REPORTED, inputs)
    assert events == [] and [h.envelope.event_id for h in state.held] == ["cmd-BTC-1"]
    assert idle_expiry_time(state, 19_000_000, 19_000_000, patience, REPORTED) is None  # not yet
    as_of = idle_expiry_time(state, 21_000_000, 21_000_000, patience, REPORTED)
    assert as_of == to_micros(T0 + timedelta(seconds=5))
    expire = ExpireOrders(envelope=ExpireOrders.envelope_for(event_time=from_micros(as_of), producer="timer",
                                                             event_id="x-1"), account="acct")
    state, events = evolve(state, expire, REPORTED)
    assert [e.order_id for e in events if isinstance(e, OrderPlaced)] == ["acct:BTC-1"] and state.held == []
    later = order("BTC", 2, T0 + timedelta(seconds=9), Side.BUY, Decimal(1))
    state, _ = evolve(state, later, REPORTED)
    assert state.held == [later]  # waits for BTC's own progress, not for ETH's
    state, events = evolve(state, progressed("BTC", T0 + timedelta(seconds=9)), REPORTED)
    assert [e.order_id for e in events if isinstance(e, OrderPlaced)] == ["acct:BTC-2"]
    state, _ = evolve(state, progressed("ETH", T0 + timedelta(seconds=12)), REPORTED)
    assert set(state.progress) == {"BTC", "ETH"}


CODEC = AvroCodec(EmbeddedRegistry())


def restarted(state: Account) -> Account:
    """The account as a restarted ledger reads it back: its row through the changelog's JSON."""
    row = json.loads(json.dumps(account_row(state)))
    return load_account({"acct": row}, "acct", Decimal(1))


@settings(max_examples=100, deadline=None)
@given(markets, commands_of, st.booleans(), st.data())
def test_a_ledger_restarted_from_its_row_at_any_point_decides_as_one_that_never_stopped(
        market: list[tuple[Any, Any]], script: list[tuple[int, str, str]], reports: bool,
        data: st.DataObject) -> None:
    """Cut the fold anywhere (a SIGKILL, a rebalance): the row written there, read back,
    then the rest of the inputs give the same events and portfolio as the uncut fold: the
    marks that held orders, open orders and later orders fill against are in the row."""
    if reports:  # the strategies report progress: the account is decided in event time
        opening, queues, commands = strategy_sources(market, script)
        inputs = [*opening, *interleave_timely(queues, commands, data)]
    else:  # no progress: decided as inputs come
        opening, queues = sources(market)
        inputs = [*opening, *interleave(queues, data)]
    inputs = [CODEC.decode(CODEC.encode(item)) for item in [*inputs, expire_all(inputs)]]  # as read from the topic
    config = BINDING if reports else CONFIG
    whole, whole_events = decide_with(config, inputs)
    cut = data.draw(st.integers(0, len(inputs)))
    state, emitted = Account.open("acct", Decimal(100_000)), []
    for offset, item in enumerate(inputs):
        if offset == cut:
            state = restarted(state)
        state, events = step(decider(config), state, item, 0, offset)
        emitted += events
    assert published(emitted) == published(whole_events)
    assert ledger_rows.to_row(state.portfolio) == ledger_rows.to_row(whole.portfolio)
    assert account_row(restarted(state)) == account_row(whole)


def test_a_row_keeps_only_the_marks_a_decision_can_still_use() -> None:
    """Once the strategy reports, the row keeps per symbol the marks within LATE_REACH_US of
    the account's time (and the newest before, the price then): an hour of one-second
    marks makes a row of about a minute of them, and a late order before them is denied."""
    marks = [mark("BTC", n, T0 + timedelta(seconds=n), Decimal(100), Decimal(1)) for n in range(3600)]
    state, _ = decide_with(REPORTED, [*marks, progressed("BTC", T0 + timedelta(seconds=3599))])
    kept = state.marks["BTC"]
    assert len(kept) == LATE_REACH_US // 1_000_000 + 2  # 3539 s to 3599 s, and 3538 s
    assert to_micros(kept[0].envelope.event_time) < to_micros(T0) + 3599_000_000 - LATE_REACH_US
    late = order("BTC", 1, T0 + timedelta(seconds=3000), Side.BUY, Decimal(1))
    state, events = evolve(state, late, REPORTED)
    assert [(type(e).__name__, getattr(e, "reason_code", "")) for e in events] == [("OrderDenied", "stale_order")]


def forged_progress(symbol: str, at: datetime, n: int, account: str = "acct",
                    strategy: str = "ema_cross") -> StrategyProgressed:
    return StrategyProgressed(envelope=StrategyProgressed.envelope_for(
        event_time=at, producer="strategy.ema_cross", event_id=f"forged-{n}"),
        account=account, symbol=symbol, strategy=strategy)


def test_a_forged_or_stray_progress_neither_holds_the_account_nor_moves_its_time_back() -> None:
    """What a broken or hostile producer could put on trading.commands (its producer string
    says "strategy.ema_cross"): progress for a symbol the account has no market for, from
    another strategy, for another account, and an old one of a traded symbol. BTC's order
    still goes by the strategies' own progress, and the old one takes nothing back."""
    opening: list[Input] = [mark("BTC", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
                            mark("ETH", 0, T0 - timedelta(seconds=1), Decimal(100), Decimal(1)),
                            progressed("BTC", T0), progressed("ETH", T0)]
    forged: list[Input] = [forged_progress("DOGE", T0 - timedelta(hours=1), 1),
                           forged_progress("ETH", T0 + timedelta(hours=1), 2, strategy="other"),
                           forged_progress("ETH", T0 + timedelta(hours=1), 3, account="someone-else")]
    state, _ = decide_with(REPORTED, [*opening, *forged])
    assert state.progress == {"BTC": to_micros(T0), "ETH": to_micros(T0)} and state.seen_us == to_micros(T0)
    at = T0 + timedelta(seconds=5)
    strategies = [order("BTC", 1, at, Side.BUY, Decimal(1)), progressed("BTC", at), progressed("ETH", at)]
    state, events = decide_with(REPORTED, [*opening, *forged, *strategies])
    assert [e.order_id for e in events if isinstance(e, OrderPlaced)] == ["acct:BTC-1"] and state.held == []
    state, _ = evolve(state, forged_progress("ETH", T0 - timedelta(hours=1), 4), REPORTED)
    assert state.progress["ETH"] == state.through_us == to_micros(at)


def test_a_market_whose_strategy_has_not_reported_yet_holds_the_account_and_its_late_orders_fill() -> None:
    """ETH's strategy starts late (its enrichments were slow): BTC's strategy has reported
    two minutes ahead before ETH's first decision, an order 2 min 30 s old, arrives. It is
    placed and filled against ETH's marks as if it had come in time, and BTC's later order,
    held until then, is the one a limit of one order a minute denies."""
    config = dataclasses.replace(REPORTED, limits=dataclasses.replace(REPORTED.limits, max_orders_per_minute=1))
    marks = [mark(symbol, n, T0 + timedelta(seconds=n), Decimal(100), Decimal(1))
             for n in range(181) for symbol in ("BTC", "ETH")]
    btc = [order("BTC", 1, T0 + timedelta(seconds=40), Side.BUY, Decimal(1)),
           *(progressed("BTC", T0 + timedelta(seconds=s)) for s in range(20, 181, 20))]
    eth = [order("ETH", 1, T0 + timedelta(seconds=30), Side.BUY, Decimal(1)),
           progressed("ETH", T0 + timedelta(seconds=30)), progressed("ETH", T0 + timedelta(seconds=180))]
    _, in_time = decide_with(config, [*marks[:62], eth[0], eth[1], *marks[62:], *btc, eth[2]])
    state, lagging = decide_with(config, [*marks, *btc, *eth])
    for events in (in_time, lagging):
        assert [(e.order_id, e.reason_code) for e in events if isinstance(e, OrderDenied)] == [
            ("acct:BTC-1", "max_orders_per_minute")]
    assert state.portfolio.orders["acct:ETH-1"].status is OrderStatus.FILLED
    assert published(lagging) == published(in_time)
