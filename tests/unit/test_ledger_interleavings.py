"""The paper ledger decides the same whatever the interleaving of its inputs (issue 13).

Live, marks and orders reach the ledger in one interleaving; a backtest at max speed, with
the marks minutes ahead of the orders, in another. Each source keeps its own order (a
symbol's marks in event time, a symbol's orders in event time, an order after the marks of
its symbol up to its time), and the ledger must give the same trading events (ids, values,
lineage) and the same portfolio for every such interleaving. Limits across symbols (orders
per minute, gross exposure) are set so they do not bind: those still see the other
symbols' orders as they arrive (see domain/risk.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import ledger_rows
from domain.account import KEEP_MARKS, Account, Input, decider
from domain.fold import step
from domain.orders import RiskLimits, TradingConfig
from domain.parity import comparable
from domain.portfolio import OrderStatus
from schemas.records import (
    Event,
    ExpireOrders,
    Mark,
    OrderDenied,
    OrderFilled,
    OrderType,
    PlaceOrder,
    Side,
)

T0 = datetime(2024, 7, 19, 12, tzinfo=UTC)
CONFIG = TradingConfig(
    limits=RiskLimits(max_position=Decimal(5), max_gross_exposure=Decimal(10**12), max_orders_per_minute=1000),
    fee_bps=Decimal(10), slippage_bps=Decimal(5), participation=Decimal("0.5"), order_timeout_us=30_000_000)


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


def interleave(queues: list[list[Input]], data: st.DataObject) -> list[Input]:
    """One interleaving: each queue keeps its order, and an order comes after every mark of
    its symbol up to its time (the strategy decides on closed candles); how far behind is drawn."""
    heads, merged = [0] * len(queues), []
    while True:
        ready = []
        for q, queue in enumerate(queues):
            if heads[q] == len(queue):
                continue
            item = queue[heads[q]]
            marks = queues[q - 1] if isinstance(item, PlaceOrder) else []
            if all(m.envelope.event_time > item.envelope.event_time for m in marks[heads[q - 1]:]):
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
