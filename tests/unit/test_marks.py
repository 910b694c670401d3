"""Marks (domain/marks.py): a run of trades in, one Mark per symbol and slice of event time
out, with the slice's last price and total size, whatever order the trades arrive in."""

from __future__ import annotations

from decimal import Decimal

from domain.candles import Tick
from domain.clock import from_micros
from domain.marks import mark_record, slice_marks

UNIT = 10**18
SLICE = 100_000  # 100 ms


def tick(symbol: str, trade_id: int, time_us: int, price: str, size: str) -> Tick:
    return Tick(symbol, trade_id, time_us, int(Decimal(price) * UNIT), int(Decimal(size) * UNIT), True)


def test_one_mark_per_symbol_and_slice_with_the_last_price_and_the_total_size() -> None:
    ticks = [tick("BTC", 1, 1_000_010, "100", "0.5"), tick("ETH", 7, 1_000_020, "10", "2"),
             tick("BTC", 3, 1_000_090, "102", "0.25"), tick("BTC", 2, 1_000_050, "101", "1"),
             tick("BTC", 4, 1_100_000, "103", "1")]  # the next slice
    marks = [mark_record(m) for m in slice_marks(ticks, SLICE)]
    shown = [(m.symbol, m.price, m.size, m.trade_count, m.last_trade_id) for m in marks]
    assert shown == [("BTC", Decimal(102), Decimal("1.75"), 3, 3), ("ETH", Decimal(10), Decimal(2), 1, 7),
                     ("BTC", Decimal(103), Decimal(1), 1, 4)]
    assert marks[0].envelope.event_time == from_micros(1_000_090) and marks[0].slice_start == from_micros(1_000_000)


def test_the_same_trades_in_another_order_give_the_same_marks_with_the_same_ids() -> None:
    ticks = [tick("BTC", n, 5_000_000 + n * 1000, str(100 + n), "0.1") for n in range(50)]

    def marks(run: list[Tick]) -> list[tuple[object, ...]]:
        return sorted((m.slice_start, m.envelope.event_id, m.envelope.event_time, m.price, m.size, m.trade_count)
                      for m in map(mark_record, slice_marks(run, SLICE)))

    assert len(marks(ticks)) == 1
    assert marks(ticks) == marks(list(reversed(ticks)))
