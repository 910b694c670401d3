"""The trading ledger fold and the order decisions, with plain values.

Property tests drive random sequences of orders, market marks and user commands through
the one fold of the ledger's input (domain.trading.account.evolve, driven by domain.fold.step as
the live agent drives it) and check what a user relies on: cash + positions at cost is
conserved apart from fees and realised P&L, folding the emitted events again (or any
prefix of them twice) gives the same portfolio, no position ever exceeds its limit, and
no order outlives its timeout.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.clock import from_micros, to_micros
from domain.fold import step
from domain.trading import controls, ledger, ledger_rows, orders
from domain.trading.account import Account, Input, Patience, decider, idle_expiry_time
from domain.trading.orders import RiskLimits, TradingConfig
from domain.trading.portfolio import OrderStatus, Portfolio
from schemas.files import all_versions
from schemas.records import (
    Command,
    CommandAcknowledged,
    EngageKillSwitch,
    Event,
    ExpireOrders,
    FlattenPosition,
    Mark,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderType,
    PauseStrategy,
    PlaceOrder,
    ReleaseKillSwitch,
    SetRiskLimit,
    Side,
)
from streams.kafka.codec import AvroCodec, to_avro
from streams.kafka.registry import embedded_schema_id, make_registry

T0 = datetime(2024, 7, 19, 12, tzinfo=UTC)
CASH = Decimal(100_000)
CONFIG = TradingConfig(
    limits=RiskLimits(max_position=Decimal(5), max_gross_exposure=Decimal(50_000), max_orders_per_minute=20),
    fee_bps=Decimal(10), slippage_bps=Decimal(5), participation=Decimal("0.5"),
    order_timeout_us=30_000_000)
SYMBOLS = ("BTC", "ETH")
CODEC = AvroCodec(make_registry(None))


def place_order(n: int, symbol: str, side: Side, quantity: Decimal, at: datetime,
                strategy: str = "ema_cross") -> PlaceOrder:
    return PlaceOrder(
        envelope=PlaceOrder.envelope_for(event_time=at, producer="agent.trading", event_id=f"cmd-{n}",
                                         ingest_time=at),
        order_id=f"acct:o{n}", account="acct", symbol=symbol, side=side, order_type=OrderType.MARKET,
        quantity=quantity, strategy=strategy)


def mark(n: int, symbol: str, price: Decimal, size: Decimal, at: datetime) -> Mark:
    return Mark(envelope=Mark.envelope_for(event_time=at, producer="test", event_id=f"mark-{n}"),
                symbol=symbol, price=price, size=size, trade_count=1, last_trade_id=n, slice_start=at)


def user_command(n: int, cls: type[Command], at: datetime, **fields: Any) -> Command:
    return cls(envelope=cls.envelope_for(event_time=at, producer="test", event_id=f"uc-{n}"),  # type: ignore[call-arg]
               user="ann", **fields)


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
        orders.on_mark(state, mark(n, "BTC", Decimal(100), Decimal(2), T0 + timedelta(seconds=n)), CONFIG)
    order = state.orders["acct:o1"]
    assert order.status is OrderStatus.FILLED and order.filled == 3 and len(order.fill_ids) == 3


def test_risk_limits_deny_with_a_reason() -> None:
    state = fresh()
    marks = {"BTC": [mark(1, "BTC", Decimal(100), Decimal(1), T0)]}
    big = orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(6), T0), CONFIG, marks)
    assert isinstance(big[0], OrderDenied) and big[0].reason_code == "max_position"
    assert state.orders["acct:o1"].status is OrderStatus.DENIED
    controls.command(state, user_command(1, EngageKillSwitch, T0), CONFIG, {})
    killed = orders.place(state, place_order(2, "BTC", Side.BUY, Decimal(1), T0), CONFIG, marks)
    assert isinstance(killed[0], OrderDenied) and killed[0].reason_code == "kill_switch"
    controls.command(state, user_command(2, ReleaseKillSwitch, T0), CONFIG, {})
    controls.command(state, user_command(3, PauseStrategy, T0, strategy="ema_cross"), CONFIG, {})
    paused = orders.place(state, place_order(3, "BTC", Side.BUY, Decimal(1), T0), CONFIG, marks)
    assert isinstance(paused[0], OrderDenied) and paused[0].reason_code == "strategy_paused"
    # the strategy is a field of the order: the producer string says nothing
    other = orders.place(state, place_order(5, "BTC", Side.BUY, Decimal(1), T0, strategy=""), CONFIG, marks)
    assert isinstance(other[0], OrderPlaced) and other[0].strategy == ""
    assert state.orders["acct:o5"].strategy == ""
    controls.command(state, user_command(4, SetRiskLimit, T0, limit="max_gross_exposure", value=Decimal(50)),
                     CONFIG, {})
    gross = orders.place(state, place_order(4, "BTC", Side.BUY, Decimal(1), T0, strategy=""), CONFIG, marks)
    assert isinstance(gross[0], OrderDenied) and gross[0].reason_code == "max_gross_exposure"


def test_orders_per_minute_limit() -> None:
    state = fresh()
    config = TradingConfig(limits=RiskLimits(Decimal(100), Decimal(10**9), 2), fee_bps=Decimal(0),
                           slippage_bps=Decimal(0), participation=Decimal(1), order_timeout_us=10**9)
    marks = {"BTC": [mark(1, "BTC", Decimal(100), Decimal(1), T0)]}
    codes = [getattr(e, "reason_code", type(e).__name__) for n in range(3)
             for e in orders.place(state, place_order(n, "BTC", Side.BUY, Decimal(1), T0 + timedelta(seconds=n)),
                                   config, marks)]
    assert codes == ["OrderPlaced", "OrderPlaced", "max_orders_per_minute"]


def test_commands_are_acknowledged_and_the_ack_folds_into_the_controls() -> None:
    state = fresh()
    ack = controls.command(state, user_command(1, SetRiskLimit, T0, limit="max_position", value=Decimal("2.50")),
                           CONFIG, {})
    assert len(ack) == 1 and isinstance(ack[0], CommandAcknowledged) and ack[0].accepted
    assert ack[0].command == "SetRiskLimit" and ack[0].arguments == {"limit": "max_position", "value": "2.5"}
    assert orders.limits_of(state, CONFIG).max_position == Decimal("2.5")
    rebuilt = ledger.fold(fresh(), ack)
    assert rebuilt.controls == state.controls


def account_at(*items: Input) -> tuple[Account, list[Event]]:
    """The account after folding the inputs as the ledger does (offsets 0, 1, ...)."""
    state, emitted = Account.open("acct", CASH), []
    for offset, item in enumerate(items):
        state, events = step(decider(CONFIG), state, item, 0, offset)
        emitted += events
    return state, emitted


def test_an_order_expires_when_its_own_symbols_marks_pass_its_deadline_not_another_symbols() -> None:
    deadline = T0 + timedelta(microseconds=CONFIG.order_timeout_us)
    opening = mark(1, "BTC", Decimal(100), Decimal(1), T0 - timedelta(seconds=1))
    state, events = account_at(opening, place_order(1, "BTC", Side.BUY, Decimal(1), T0),
                               mark(2, "ETH", Decimal(50), Decimal(1), deadline + timedelta(seconds=5)))
    # ETH's marks may run ahead of BTC's (another partition): BTC's marks up to the deadline still fill it
    assert [type(e).__name__ for e in events] == ["OrderPlaced"]
    state, events = step(decider(CONFIG), state, mark(3, "BTC", Decimal(100), Decimal(9),
                                                      deadline + timedelta(microseconds=1)), 0, 3)
    assert [type(e).__name__ for e in events] == ["OrderExpired"]  # BTC's next trade came after it
    expired = events[0]
    assert isinstance(expired, OrderExpired) and expired.deadline == deadline
    placed = state.portfolio.orders["acct:o1"].event_ids[0]
    assert expired.remaining_quantity == 1 and expired.envelope.causation_id == placed  # not the mark that noticed
    assert state.portfolio.orders["acct:o1"].status is OrderStatus.EXPIRED and state.portfolio.open_orders() == []


def test_a_mark_at_the_deadline_fills_whether_it_came_before_or_after_the_order() -> None:
    deadline = T0 + timedelta(microseconds=CONFIG.order_timeout_us)
    opening = mark(1, "BTC", Decimal(100), Decimal(1), T0 - timedelta(seconds=1))
    order, last = place_order(1, "BTC", Side.BUY, Decimal(1), T0), mark(2, "BTC", Decimal(100), Decimal(9), deadline)
    first, late = account_at(opening, order, last)
    second, early = account_at(opening, last, order)
    assert [type(e).__name__ for e in late] == ["OrderPlaced", "OrderFilled", "PositionChanged"]
    assert [(e.envelope.event_id, e.envelope.causation_id) for e in late] == \
        [(e.envelope.event_id, e.envelope.causation_id) for e in early]
    assert first.portfolio.orders["acct:o1"].status is second.portfolio.orders["acct:o1"].status is OrderStatus.FILLED


def test_an_order_never_fills_against_trades_after_its_deadline() -> None:
    late = T0 + timedelta(seconds=31)
    recent = {"BTC": [mark(1, "BTC", Decimal(100), Decimal(1), late)]}
    events = orders.place(fresh(), place_order(1, "BTC", Side.BUY, Decimal(1), T0), CONFIG, recent)
    assert [type(e).__name__ for e in events] == ["OrderPlaced", "OrderExpired"]  # its market passed it by


def expire_orders(n: int, at: datetime) -> ExpireOrders:
    return ExpireOrders(envelope=ExpireOrders.envelope_for(event_time=at, producer="anyone", event_id=f"x-{n}"),
                        account="acct")


def test_an_expiry_request_closes_only_what_is_due_by_its_own_event_time() -> None:
    opening = mark(1, "BTC", Decimal(100), Decimal(1), T0 - timedelta(seconds=1))
    state, _ = account_at(opening, place_order(1, "BTC", Side.BUY, Decimal(1), T0),
                          place_order(2, "BTC", Side.BUY, Decimal(1), T0 + timedelta(seconds=20)))
    # a request from anyone, early: nothing is due, nothing closes
    state, events = step(decider(CONFIG), state, expire_orders(1, T0 + timedelta(seconds=29)), 0, 3)
    assert events == [] and len(state.portfolio.open_orders()) == 2
    state, events = step(decider(CONFIG), state, expire_orders(2, T0 + timedelta(seconds=30)), 0, 4)
    assert [getattr(e, "order_id", None) for e in events] == ["acct:o1"]
    assert [o.order_id for o in state.portfolio.open_orders()] == ["acct:o2"]


PATIENCE = Patience(idle_us=20_000_000, stalled_us=140_000_000)


def test_a_pause_of_the_feed_leaves_an_order_to_its_own_marks_then_the_end_of_the_feed_closes_it() -> None:
    """A replay at max speed pauses where live did not (and the other way round): the
    timer must not move the account's time on by the wall clock. After a 2 s pause the
    order waits for BTC's mark at its deadline, which fills it as live; only with no input
    for the patience (the feed has ended) is an order asked to close, at its deadline."""
    deadline = T0 + timedelta(microseconds=CONFIG.order_timeout_us)
    opening = mark(1, "BTC", Decimal(100), Decimal(1), T0 - timedelta(seconds=1))
    state, _ = account_at(opening, place_order(1, "BTC", Side.BUY, Decimal(1), T0),
                          mark(2, "BTC", Decimal(100), Decimal("0.2"), deadline - timedelta(seconds=1)))
    assert idle_expiry_time(state, 2_000_000, 2_000_000, PATIENCE, CONFIG) is None  # a pause: its mark may come
    state, events = step(decider(CONFIG), state, mark(3, "BTC", Decimal(100), Decimal("0.4"), deadline), 0, 3)
    assert [type(e).__name__ for e in events] == ["OrderFilled", "PositionChanged", "OrderExpired"]  # as live
    last = place_order(2, "BTC", Side.BUY, Decimal(1), deadline + timedelta(seconds=1))  # no market after it
    state, _ = step(decider(CONFIG), state, last, 0, 4)
    assert idle_expiry_time(state, 19_000_000, 19_000_000, PATIENCE, CONFIG) is None
    as_of = idle_expiry_time(state, 21_000_000, 21_000_000, PATIENCE, CONFIG)
    assert as_of == to_micros(deadline) + 1_000_000 + CONFIG.order_timeout_us  # from the state, not the wall clock
    state, events = step(decider(CONFIG), state, expire_orders(1, from_micros(as_of)), 0, 5)
    assert [type(e).__name__ for e in events] == ["OrderExpired"] and state.portfolio.open_orders() == []
    assert idle_expiry_time(state, 60_000_000, 60_000_000, PATIENCE, CONFIG) is None  # nothing left to ask


def test_an_input_already_applied_is_skipped() -> None:
    opening = mark(1, "BTC", Decimal(100), Decimal(1), T0 - timedelta(seconds=1))
    state, _ = account_at(opening, place_order(1, "BTC", Side.BUY, Decimal(1), T0))
    again, repeated = step(decider(CONFIG), state, place_order(1, "BTC", Side.BUY, Decimal(1), T0), 0, 1)
    assert not repeated and again.applied.offset == 1 and len(state.portfolio.orders) == 1


def test_old_order_rejected_events_still_fold_each_to_what_it_meant() -> None:
    def rejected(order: str, code: str) -> OrderRejected:
        return OrderRejected(envelope=OrderRejected.envelope_for(event_time=T0, producer="agent.trading",
                                                                 event_id=f"rej-{order}"),
                             order_id=order, account="acct", symbol="BTC", reason_code=code, reason=code)

    placed = [OrderPlaced(envelope=OrderPlaced.envelope_for(event_time=T0, producer="strategy.ema_cross",
                                                            event_id=f"p-{n}"),
                          order_id=f"o{n}", account="acct", symbol="BTC", side=Side.BUY,
                          order_type=OrderType.MARKET, quantity=Decimal(1)) for n in range(3)]
    state = ledger.fold(fresh(), [*placed, rejected("o0", "expired"), rejected("o1", "kill_switch"),
                                  rejected("o2", "flatten"), rejected("o3", "max_position")])
    assert [state.orders[f"o{n}"].status for n in range(4)] == [
        OrderStatus.EXPIRED, OrderStatus.CANCELED, OrderStatus.CANCELED, OrderStatus.DENIED]
    row = ledger_rows.to_row(state)
    old_row = {**row, "orders": {k: {**o, "status": "REJECTED", "placed_wall_us": 1} if o["status"] != "OPEN" else o
                                  for k, o in row["orders"].items()}}
    assert ledger_rows.to_row(ledger_rows.from_row(old_row)) == row  # a row written before reads the same


def test_an_order_placed_written_with_v1_decodes_and_folds_as_the_old_ledger_meant_it() -> None:
    v1 = all_versions()["ticktide.trading.OrderPlaced"][0]
    written = dataclasses.replace(OrderPlaced.envelope_for(event_time=T0, producer="strategy.ema_cross"),
                                  schema_version=1)  # as the old ledger wrote it
    today = OrderPlaced(envelope=written, order_id="o1", account="acct", symbol="BTC", side=Side.BUY,
                        order_type=OrderType.MARKET, quantity=Decimal(1), strategy="ema_cross")
    old = to_avro(today)
    del old["strategy"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(v1.schema), old)
    decoded = CODEC.decode(b"\x00" + embedded_schema_id(v1.schema).to_bytes(4, "big") + body.getvalue())
    assert decoded == dataclasses.replace(today, strategy="")
    assert ledger.apply(fresh(), decoded).orders["o1"].strategy == "ema_cross"  # what v1's producer said
    new = dataclasses.replace(today, strategy="", order_id="o2", envelope=dataclasses.replace(
        written, event_id="new", schema_version=2))
    assert ledger.apply(fresh(), new).orders["o2"].strategy == ""  # v2: only the field counts


def test_flatten_closes_the_position_at_the_next_mark() -> None:
    state = fresh()
    first = mark(1, "BTC", Decimal(100), Decimal(10), T0)
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(2), T0 - timedelta(seconds=1)), CONFIG,
                 {"BTC": [first]})
    cmd = user_command(1, FlattenPosition, T0, symbol="BTC")
    events = controls.command(state, cmd, CONFIG, {"BTC": [first]})
    assert [type(e).__name__ for e in events] == ["OrderPlaced", "CommandAcknowledged"]
    orders.on_mark(state, mark(2, "BTC", Decimal(101), Decimal(10), T0 + timedelta(seconds=1)), CONFIG)
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
    """Drive the ledger's fold over its input as the agent does; every emitted event, in order."""
    decide = decider(CONFIG)
    state, events = Account.open("acct", CASH), []
    opening = T0 - timedelta(seconds=1)  # every symbol has a price before the first order
    for i, symbol in enumerate(SYMBOLS):
        state, _ = step(decide, state, mark(-1 - i, symbol, Decimal(100), Decimal(1), opening), 0, i)
    for n, action in enumerate(script):
        at = T0 + timedelta(seconds=n)
        item: Input
        if action[0] == "wait":  # a second passes with no input
            continue
        if action[0] == "order":
            item = place_order(n, action[1], action[2], action[3], at)
        elif action[0] == "mark":
            item = mark(n, action[1], action[2], action[3], at)
        elif action[0] == "flatten":
            item = user_command(n, FlattenPosition, at, symbol=action[1])
        elif action[0] == "kill":
            item = user_command(n, EngageKillSwitch if action[1] == "on" else ReleaseKillSwitch, at)
        else:
            item = expire_orders(n, at + timedelta(microseconds=CONFIG.order_timeout_us // 2))
        state, out = step(decide, state, item, 0, len(SYMBOLS) + n)
        events += out
        if check:
            check(state.portfolio, to_micros(item.envelope.event_time), item)
    return state.portfolio, events


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
    def within(state: Portfolio, *_: Any) -> None:
        for p in state.positions.values():
            assert abs(p.quantity) <= CONFIG.limits.max_position
    run(script, within)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_no_order_is_open_after_a_mark_of_its_symbol_or_a_request_past_its_deadline(
        script: list[tuple[Any, ...]]) -> None:
    def none_overdue(state: Portfolio, now_us: int, item: Input) -> None:
        symbol = item.symbol if isinstance(item, Mark) else None  # any other input expires every symbol's
        assert all(o.placed_us + CONFIG.order_timeout_us > now_us for o in state.open_orders(symbol)
                   if not isinstance(item, PlaceOrder))
    run(script, none_overdue)


def test_repeating_flatten_while_its_order_is_open_places_nothing_more() -> None:
    state = fresh()
    first = mark(1, "BTC", Decimal(100), Decimal(10), T0)
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(2), T0 - timedelta(seconds=1)), CONFIG,
                 {"BTC": [first]})
    assert state.positions["BTC"].quantity == 2
    controls.command(state, user_command(1, FlattenPosition, T0, symbol="BTC"), CONFIG, {"BTC": [first]})
    again = controls.command(state, user_command(2, FlattenPosition, T0, symbol="BTC"), CONFIG, {"BTC": [first]})
    assert [type(e).__name__ for e in again] == ["CommandAcknowledged"] and "already being flattened" in \
        again[0].detail  # type: ignore[attr-defined]
    assert len(state.open_orders("BTC")) == 1
    for n in range(2, 6):  # generous marks: everything open fills
        orders.on_mark(state, mark(n, "BTC", Decimal(101), Decimal(10), T0 + timedelta(seconds=n)), CONFIG)
    assert state.positions["BTC"].quantity == 0  # flat, not short


def test_flatten_after_a_partial_fill_replaces_the_open_orders_and_never_overshoots() -> None:
    state = fresh()
    opening = mark(1, "BTC", Decimal(100), Decimal(10), T0)
    orders.place(state, place_order(1, "BTC", Side.BUY, Decimal(4), T0 - timedelta(seconds=1)), CONFIG,
                 {"BTC": [opening]})  # 4 x 0.5 participation of 10: fills fully
    orders.place(state, place_order(2, "BTC", Side.BUY, Decimal(1), T0), CONFIG, {})  # stays open
    events = controls.command(state, user_command(1, FlattenPosition, T0, symbol="BTC"), CONFIG,
                              {"BTC": [opening]})
    assert [o.side for o in state.open_orders("BTC")] == ["SELL"]  # the open buy was canceled
    canceled = events[0]
    assert isinstance(canceled, OrderCanceled) and canceled.command_id == "uc-1" and canceled.remaining_quantity == 1
    assert state.orders["acct:o2"].status is OrderStatus.CANCELED and state.orders["acct:o2"].reason_code == "flatten"
    orders.on_mark(state, mark(2, "BTC", Decimal(100), Decimal(2), T0 + timedelta(seconds=1)),
                   CONFIG)  # fills 1 of the 4 to sell
    assert state.positions["BTC"].quantity == 3
    for n in range(3, 6):  # the user repeats the flatten while it is partly done
        controls.command(state, user_command(n, FlattenPosition, T0 + timedelta(seconds=n), symbol="BTC"), CONFIG,
                         {"BTC": [opening]})
        assert sum(o.remaining for o in state.open_orders("BTC")) == 3
    for n in range(6, 12):
        orders.on_mark(state, mark(n, "BTC", Decimal(100), Decimal(10), T0 + timedelta(seconds=n)), CONFIG)
    assert state.positions["BTC"].quantity == 0 and state.open_orders() == []


@settings(max_examples=100, deadline=None)
@given(steps)
def test_a_flatten_then_enough_market_leaves_every_position_flat(script: list[tuple[Any, ...]]) -> None:
    """The user flattens once the script's orders are over in event time (past their
    deadlines: a symbol's orders fill one after another, and an expiry request of the
    script, 15 s ahead of its step, may have closed one at its deadline after the script's
    end), then the market trades enough within the flatten orders' deadlines."""
    later = [("wait",)] * 45  # every order of the script is past its deadline (30 s)
    live = [("mark", s, Decimal(100), Decimal(1)) for s in SYMBOLS]  # the market is live when the user flattens
    state, _ = run([*script, *later, *live, ("kill", "off"), ("flatten", "BTC"), ("flatten", "BTC"),
                    ("flatten", "ETH"), *[("mark", s, Decimal(100), Decimal(20)) for s in SYMBOLS for _ in range(2)]])
    assert all(p.quantity == 0 for p in state.positions.values())


def test_the_risk_check_prices_an_order_at_its_own_event_time_not_at_the_newest_mark() -> None:
    # gross exposure 50,000: 2 BTC at 20,000 (the price when the order was made) passes; at the
    # 30,000 of a mark that had arrived by the time the order did, it would be denied
    before = mark(1, "BTC", Decimal(20_000), Decimal(10), T0 - timedelta(seconds=1))
    after = mark(2, "BTC", Decimal(30_000), Decimal("0.001"), T0 + timedelta(seconds=1))
    _, late = account_at(before, after, place_order(1, "BTC", Side.BUY, Decimal(2), T0))
    _, in_time = account_at(before, place_order(1, "BTC", Side.BUY, Decimal(2), T0), after)
    assert [type(e) for e in late][:1] == [OrderPlaced]
    assert [e.envelope.event_id for e in late] == [e.envelope.event_id for e in in_time]
