"""Marks (domain/market/marks.py): the candle fold closes each symbol's slices of event time with
its windows, one Mark per symbol and slice, with the slice's last price and total size,
whatever order the trades arrive in (within the grace)."""

from __future__ import annotations

from decimal import Decimal

from domain.clock import from_micros
from domain.market.bars import Tick
from domain.market.candles import CandleFold, ClosedSlice, SymbolCandles
from domain.market.marks import mark_record, slice_of
from domain.market.windows import parse_windows
from schemas.records import Mark

UNIT = 10**18
SLICE = 100_000  # 100 ms


def tick(symbol: str, trade_id: int, time_us: int, price: str, size: str) -> Tick:
    return Tick(symbol, trade_id, time_us, int(Decimal(price) * UNIT), int(Decimal(size) * UNIT), True)


def marks_of(ticks: list[Tick], grace_us: int = 0) -> list[Mark]:
    """The marks the fold closes for these trades, then at the end of the input, in the order sent."""
    fold = CandleFold(parse_windows("1s"), grace_us, mark_step_us=SLICE)
    states: dict[str, SymbolCandles] = {}
    outputs = []
    for t in ticks:
        outputs += fold.evolve(states.setdefault(t.symbol, SymbolCandles(t.symbol)), t)[1]
    for state in states.values():
        outputs += fold.close_all(state)
    return [mark_record(slice_of(o)) for o in outputs if isinstance(o, ClosedSlice)]


def test_one_mark_per_symbol_and_slice_with_the_last_price_and_the_total_size() -> None:
    ticks = [tick("BTC", 1, 1_000_010, "100", "0.5"), tick("ETH", 7, 1_000_020, "10", "2"),
             tick("BTC", 3, 1_000_090, "102", "0.25"), tick("BTC", 2, 1_000_050, "101", "1"),
             tick("BTC", 4, 1_100_000, "103", "1")]  # the next slice
    marks = marks_of(ticks, grace_us=50_000)  # trade 2 is out of order, within the grace
    shown = [(m.symbol, m.price, m.size, m.trade_count, m.last_trade_id) for m in marks]
    assert shown == [("BTC", Decimal(102), Decimal("1.75"), 3, 3), ("BTC", Decimal(103), Decimal(1), 1, 4),
                     ("ETH", Decimal(10), Decimal(2), 1, 7)]
    assert marks[0].envelope.event_time == from_micros(1_000_090) and marks[0].slice_start == from_micros(1_000_000)


def test_the_same_trades_in_another_order_give_the_same_marks_with_the_same_ids() -> None:
    ticks = [tick("BTC", n, 5_000_000 + n * 1000, str(100 + n), "0.1") for n in range(50)]

    def marks(run: list[Tick]) -> list[tuple[object, ...]]:
        return [(m.slice_start, m.envelope.event_id, m.envelope.event_time, m.price, m.size, m.trade_count)
                for m in marks_of(run, grace_us=1_000_000)]

    assert len(marks(ticks)) == 1
    assert marks(ticks) == marks(list(reversed(ticks)))


def test_a_trade_after_its_slice_closed_is_late_and_in_no_mark() -> None:
    ticks = [tick("BTC", 1, 1_000_000, "100", "1"), tick("BTC", 2, 1_250_000, "101", "1"),
             tick("BTC", 3, 1_050_000, "99", "5")]  # its slice closed with the grace of 0
    assert [(m.last_trade_id, m.size) for m in marks_of(ticks)] == [(1, Decimal(1)), (2, Decimal(1))]
