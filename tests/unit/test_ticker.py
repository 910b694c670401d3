"""The ticker fold: exact sums, out-of-order trades, re-delivery applied once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from domain.ticker import Ticker, apply_trade
from tests.factories import T0, make_trade


def _fold(trades_with_offsets: list[tuple[object, int]]) -> Ticker | None:
    state = None
    for trade, offset in trades_with_offsets:
        state = apply_trade(state, trade, 0, offset)  # type: ignore[arg-type]
    return state


def test_counts_and_volume_are_exact_decimals() -> None:
    trades = [make_trade(trade_id=i, price=Decimal("0.1") * (i + 1), size=Decimal("0.1"))
              for i in range(10)]
    state = _fold([(t, i) for i, t in enumerate(trades)])
    assert state is not None
    assert state.volume == Decimal("1.0")  # floats would give 0.9999999999999999
    assert (state.trade_count, state.high, state.low) == (10, Decimal("1.0"), Decimal("0.1"))


def test_redelivered_record_is_not_applied_twice() -> None:
    first, second = make_trade(trade_id=1), make_trade(trade_id=2)
    once = _fold([(first, 10), (second, 11)])
    again = _fold([(first, 10), (second, 11), (first, 10), (second, 11)])
    assert once == again and once is not None and once.trade_count == 2


def test_out_of_order_trade_counts_but_keeps_the_newer_last_price() -> None:
    newer = make_trade(trade_id=2, price=Decimal("101"), trade_time=T0)
    older = make_trade(trade_id=1, price=Decimal("99"), trade_time=T0 - timedelta(seconds=2))
    state = _fold([(newer, 0), (older, 1)])
    assert state is not None
    assert state.last_price == Decimal("101") and state.last_trade_id == 2
    assert state.trade_count == 2 and state.low == Decimal("99")
