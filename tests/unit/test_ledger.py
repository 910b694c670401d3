"""The trading ledger fold and the order decisions, with plain values.

Property tests drive random sequences of orders, market marks and user commands through
the decisions and check what a user relies on: cash + positions at cost is conserved apart
from fees and realised P&L, folding the emitted events again (or any prefix of them twice)
gives the same portfolio, and no position ever exceeds its limit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import controls, ledger, ledger_rows, orders
from domain.clock import to_micros
from domain.ledger import OrderStatus, Portfolio
from domain.orders import Mark, RiskLimits, TradingConfig
from schemas.records import (
    CommandAcknowledged,
    Event,
    OrderFilled,
    OrderRejected,
    OrderType,
    PlaceOrder,
    Side,
    UserCommand,
)
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import make_registry

T0 = datetime(2024, 7, 19, 12, tzinfo=UTC)
CASH = Decimal(100_000)
CONFIG = TradingConfig(
    limits=RiskLimits(max_position=Decimal(5), max_gross_exposure=Decimal(50_000), max_orders_per_minute=20),
    fee_bps=Decimal(10), slippage_bps=Decimal(5), participation=Decimal("0.5"),
    order_timeout_us=30_000_000)
SYMBOLS = ("BTC", "ETH")
CODEC = AvroCodec(make_registry(None))


def place_order(n: int, symbol: str, side: Side, quantity: Decimal, at: datetime,
                producer: str = "strategy.ema_cross") -> PlaceOrder:
    return PlaceOrder(
        envelope=PlaceOrder.envelope_for(event_time=at, producer=producer, event_id=f"cmd-{n}",
                                         ingest_time=at),
        order_id=f"acct:o{n}", account="acct", symbol=symbol, side=side, order_type=OrderType.MARKET,
        quantity=quantity)


def mark(n: int, symbol: str, price: Decimal, size: Decimal, at: datetime) -> Mark:
    return Mark(f"mark-{n}", symbol, price, size, to_micros(at), n)


def user_command(n: int, name: str, at: datetime, **arguments: str) -> UserCommand:
    return UserCommand(envelope=UserCommand.envelope_for(event_time=at, producer="test", event_id=f"uc-{n}"),
                       command=name, arguments=arguments, user="ann")


def fresh() -> Portfolio:
    return Portfolio.open("acct", CASH)


def test_buy_fill_then_sell_realises_pnl_and_pays_fees() -> None:
    state = fresh()
    marks = {"BTC": [mark(1, "BTC", Decimal(100), Decimal(10), T0)]}
    events = orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(2), T0 - timedelta(seconds=1)),
                          CONFIG, marks)
    assert [type(e).__name__ for e in events] == ["OrderPlaced", "OrderFilled", "PositionChanged"]
    fill = events[1]
    assert isinstance(fill, OrderFilled)
    assert fill.fill_price == Decimal("100.05")  # 5 bps slippage against the buyer
    assert fill.fee == Decimal("0.2001")  # 10 bps of 200.10
    later = T0 + timedelta(seconds=5)
    events = orders.place(state, place_order(2, "BTC", Side.SELL, Decimal(2), later),
                          CONFIG, {"BTC": [mark(2, "BTC", Decimal(110), Decimal(10), later + timedelta(seconds=1))]})
    position = state.positions["BTC"]
    assert position.quantity == 0
    assert position.realised == Decimal("109.945") * 2 - Decimal("200.10")
    assert state.cash == CASH + position.realised - position.fees


def test_partial_fills_until_done_and_never_against_earlier_trades() -> None:
    state = fresh()
    before = mark(1, "BTC", Decimal(100), Decimal(2), T0)
    events = orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(3), T0 + timedelta(seconds=1)),
                          CONFIG, {"BTC": [before]})
    assert [type(e).__name__ for e in events] == ["OrderPlaced"]  # the only trade came before it
    for n in range(2, 5):
        orders.on_mark(state, mark(n, "BTC", Decimal(100), Decimal(2), T0 + timedelta(seconds=n)), CONFIG,
                       events[0])
    order = state.orders["acct:o1"]
    assert order.status is OrderStatus.FILLED and order.filled == 3 and len(order.fill_ids) == 3


def test_risk_limits_reject_with_a_reason() -> None:
    state = fresh()
    marks = {"BTC": [mark(1, "BTC", Decimal(100), Decimal(1), T0)]}
    big = orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(6), T0), CONFIG, marks)
    assert isinstance(big[0], OrderRejected) and big[0].reason_code == "max_position"
    controls.command(state, user_command(1, "kill_switch", T0, state="on"), CONFIG, {})
    killed = orders.place(state, place_order(2, "BTC", Side.BUY, Decimal(1), T0), CONFIG, marks)
    assert isinstance(killed[0], OrderRejected) and killed[0].reason_code == "kill_switch"
    controls.command(state, user_command(2, "kill_switch", T0, state="off"), CONFIG, {})
    controls.command(state, user_command(3, "pause_strategy", T0, strategy="ema_cross"), CONFIG, {})
    paused = orders.place(state, place_order(3, "BTC", Side.BUY, Decimal(1), T0), CONFIG, marks)
    assert isinstance(paused[0], OrderRejected) and paused[0].reason_code == "strategy_paused"
    controls.command(state, user_command(4, "set_risk_limit", T0, limit="max_gross_exposure", value="50"),
                   CONFIG, {})
    gross = orders.place(state, place_order(4, "BTC", Side.BUY, Decimal(1), T0, producer="user"), CONFIG, marks)
    assert isinstance(gross[0], OrderRejected) and gross[0].reason_code == "max_gross_exposure"


def test_orders_per_minute_limit() -> None:
    state = fresh()
    config = TradingConfig(limits=RiskLimits(Decimal(100), Decimal(10**9), 2), fee_bps=Decimal(0),
                           slippage_bps=Decimal(0), participation=Decimal(1), order_timeout_us=10**9)
    marks = {"BTC": [mark(1, "BTC", Decimal(100), Decimal(1), T0)]}
    codes = [getattr(e, "reason_code", type(e).__name__) for n in range(3)
             for e in orders.place(state, place_order(n, "BTC", Side.BUY, Decimal(1), T0 + timedelta(seconds=n)),
                                   config, marks)]
    assert codes == ["OrderPlaced", "OrderPlaced", "max_orders_per_minute"]


def test_unknown_or_bad_commands_are_refused_and_acknowledged() -> None:
    state = fresh()
    ack = controls.command(state, user_command(1, "set_risk_limit", T0, limit="max_position", value="abc"), CONFIG, {})
    assert len(ack) == 1 and isinstance(ack[0], CommandAcknowledged)
    assert not ack[0].accepted and "number" in ack[0].detail
    ack = controls.command(state, user_command(2, "launch_rocket", T0), CONFIG, {})
    assert isinstance(ack[0], CommandAcknowledged) and "unknown command" in ack[0].detail
    assert state.controls.limits == {}


def test_expired_orders_are_closed_with_a_compensating_event() -> None:
    state = fresh()
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(1), T0), CONFIG,
                 {"BTC": [mark(1, "BTC", Decimal(100), Decimal(1), T0 - timedelta(seconds=1))]})
    assert orders.expire(state, to_micros(T0) + CONFIG.order_timeout_us - 1, CONFIG) == []
    events = orders.expire(state, to_micros(T0) + CONFIG.order_timeout_us, CONFIG)
    assert isinstance(events[0], OrderRejected) and events[0].reason_code == "expired"
    assert state.open_orders() == []


def test_flatten_closes_the_position_at_the_next_mark() -> None:
    state = fresh()
    first = mark(1, "BTC", Decimal(100), Decimal(10), T0)
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(2), T0 - timedelta(seconds=1)), CONFIG,
                 {"BTC": [first]})
    cmd = user_command(1, "flatten", T0, symbol="BTC")
    events = controls.command(state, cmd, CONFIG, {"BTC": [first]})
    assert [type(e).__name__ for e in events] == ["OrderPlaced", "CommandAcknowledged"]
    orders.on_mark(state, mark(2, "BTC", Decimal(101), Decimal(10), T0 + timedelta(seconds=1)), CONFIG, cmd)
    assert state.positions["BTC"].quantity == 0


def test_row_round_trip() -> None:
    state = fresh()
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal("1.5"), T0 - timedelta(seconds=1)), CONFIG,
                 {"BTC": [mark(1, "BTC", Decimal("100.1"), Decimal(1), T0)]})
    row = ledger_rows.to_row(state)
    assert ledger_rows.to_row(ledger_rows.from_row(row)) == row
    assert ledger_rows.summary(state)["positions"]["BTC"]["quantity"] == "0.5"


# --- properties -----------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(4), places=3)
prices = st.decimals(min_value=Decimal(1), max_value=Decimal(1000), places=4)
order_steps = st.tuples(st.just("order"), st.sampled_from(SYMBOLS), st.sampled_from([Side.BUY, Side.SELL]), amounts)
mark_steps = st.tuples(st.just("mark"), st.sampled_from(SYMBOLS), prices, amounts)
steps = st.lists(st.one_of(
    order_steps, order_steps, mark_steps, mark_steps, mark_steps,
    st.tuples(st.just("flatten"), st.sampled_from(SYMBOLS)),
    st.tuples(st.just("kill"), st.sampled_from(["on", "off", "off", "off"])),
    st.tuples(st.just("expire")),
), max_size=80)


def run(script: list[tuple[Any, ...]], check: Any = None) -> tuple[Portfolio, list[Event]]:
    """Drive the decisions; every emitted event, in order."""
    state, events = fresh(), []
    opening = T0 - timedelta(seconds=1)  # every symbol has a price before the first order
    marks = {s: [mark(-1 - i, s, Decimal(100), Decimal(1), opening)] for i, s in enumerate(SYMBOLS)}
    for n, step in enumerate(script):
        at = T0 + timedelta(seconds=n)
        if step[0] == "order":
            events += orders.place(state, place_order(n, step[1], step[2], step[3], at), CONFIG, marks)
        elif step[0] == "mark":
            m = mark(n, step[1], step[2], step[3], at)
            marks[step[1]].append(m)
            events += orders.on_mark(state, m, CONFIG, place_order(n, step[1], Side.BUY, Decimal(1), at))
        elif step[0] == "flatten":
            events += controls.command(state, user_command(n, "flatten", at, symbol=step[1]), CONFIG, marks)
        elif step[0] == "kill":
            events += controls.command(state, user_command(n, "kill_switch", at, state=step[1]), CONFIG, marks)
        else:
            events += orders.expire(state, to_micros(at) + CONFIG.order_timeout_us // 2, CONFIG)
        if check:
            check(state)
    return state, events


@settings(max_examples=150, deadline=None)
@given(steps)
def test_cash_plus_positions_at_cost_is_conserved_apart_from_fees_and_pnl(script: list[tuple[Any, ...]]) -> None:
    state, _ = run(script)
    cost = sum((p.cost for p in state.positions.values()), Decimal(0))
    realised = sum((p.realised for p in state.positions.values()), Decimal(0))
    fees = sum((p.fees for p in state.positions.values()), Decimal(0))
    assert state.cash + cost == CASH + realised - fees
    for p in state.positions.values():  # and at any price, equity moves only by unrealised P&L
        assert p.quantity * p.last_price - p.cost == p.unrealised()


@settings(max_examples=150, deadline=None)
@given(steps, st.data())
def test_the_fold_of_the_events_is_the_live_state_and_replaying_a_prefix_twice_changes_nothing(
        script: list[tuple[Any, ...]], data: st.DataObject) -> None:
    state, events = run(script)
    for event in events:  # every decided event fits the contract (e.g. 18 decimal places)
        CODEC.decode(CODEC.encode(event))
    rebuilt = ledger.fold(fresh(), events)
    assert ledger_rows.to_row(rebuilt) == ledger_rows.to_row(state)
    k = data.draw(st.integers(0, len(events)))
    twice = ledger.fold(ledger.fold(fresh(), events[:k]), events[:k])
    assert ledger_rows.to_row(twice) == ledger_rows.to_row(ledger.fold(fresh(), events[:k]))
    again = ledger.fold(ledger.fold(fresh(), events), events[:k])  # re-delivered after a crash
    assert ledger_rows.to_row(again) == ledger_rows.to_row(state)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_positions_never_exceed_the_limit(script: list[tuple[Any, ...]]) -> None:
    def within(state: Portfolio) -> None:
        for p in state.positions.values():
            assert abs(p.quantity) <= CONFIG.limits.max_position
    run(script, within)


def test_repeating_flatten_while_its_order_is_open_places_nothing_more() -> None:
    state = fresh()
    first = mark(1, "BTC", Decimal(100), Decimal(10), T0)
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(2), T0 - timedelta(seconds=1)), CONFIG,
                 {"BTC": [first]})
    assert state.positions["BTC"].quantity == 2
    controls.command(state, user_command(1, "flatten", T0, symbol="BTC"), CONFIG, {"BTC": [first]})
    again = controls.command(state, user_command(2, "flatten", T0, symbol="BTC"), CONFIG, {"BTC": [first]})
    assert [type(e).__name__ for e in again] == ["CommandAcknowledged"] and "already being flattened" in \
        again[0].detail  # type: ignore[attr-defined]
    assert len(state.open_orders("BTC")) == 1
    for n in range(2, 6):  # generous marks: everything open fills
        orders.on_mark(state, mark(n, "BTC", Decimal(101), Decimal(10), T0 + timedelta(seconds=n)), CONFIG,
                       user_command(n, "noop", T0))
    assert state.positions["BTC"].quantity == 0  # flat, not short


def test_flatten_after_a_partial_fill_replaces_the_open_orders_and_never_overshoots() -> None:
    state = fresh()
    opening = mark(1, "BTC", Decimal(100), Decimal(10), T0)
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(4), T0 - timedelta(seconds=1)), CONFIG,
                 {"BTC": [opening]})  # 4 x 0.5 participation of 10: fills fully
    orders.place(state, place_order(2, "BTC", Side.BUY, Decimal(1), T0), CONFIG, {})  # stays open
    controls.command(state, user_command(1, "flatten", T0, symbol="BTC"), CONFIG, {"BTC": [opening]})
    assert [o.side for o in state.open_orders("BTC")] == ["SELL"]  # the open buy was cancelled
    assert state.orders["acct:o2"].reason_code == "flatten"
    orders.on_mark(state, mark(2, "BTC", Decimal(100), Decimal(2), T0 + timedelta(seconds=1)), CONFIG,
                   user_command(9, "noop", T0))  # fills 1 of the 4 to sell
    assert state.positions["BTC"].quantity == 3
    for n in range(3, 6):  # the user repeats the flatten while it is partly done
        controls.command(state, user_command(n, "flatten", T0 + timedelta(seconds=n), symbol="BTC"), CONFIG,
                         {"BTC": [opening]})
        assert sum(o.remaining for o in state.open_orders("BTC")) == 3
    for n in range(6, 12):
        orders.on_mark(state, mark(n, "BTC", Decimal(100), Decimal(10), T0 + timedelta(seconds=n)), CONFIG,
                       user_command(n, "noop", T0))
    assert state.positions["BTC"].quantity == 0 and state.open_orders() == []


@settings(max_examples=100, deadline=None)
@given(steps)
def test_a_flatten_then_enough_market_leaves_every_position_flat(script: list[tuple[Any, ...]]) -> None:
    state, _ = run([*script, ("kill", "off"), ("flatten", "BTC"), ("flatten", "BTC"), ("flatten", "ETH"),
                    *[("mark", s, Decimal(100), Decimal(20)) for s in SYMBOLS for _ in range(2)]])
    assert all(p.quantity == 0 for p in state.positions.values())
