"""One trade as the candle fold sees it (``Tick``: integers of 1e-18 units), and the
running OHLCV of one window (``Bar``): exact integer sums, open and close by (trade time,
trade id), so a bar does not depend on the order its trades arrived in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class Tick:
    """The parts of a trade a candle needs, as integers (hot-path form of a Trade). Made for
    every trade and never changed, but not frozen: a frozen dataclass sets each field through
    ``object.__setattr__``, which made a tick cost four times as much (1.6 us, 0.4 us now)."""

    symbol: str
    trade_id: int
    time_us: int
    price: int
    size: int
    buy: bool  # the taker bought


@dataclass(slots=True)
class Bar:
    """The running OHLCV of one window. ``quote`` and ``buy_quote`` (the taker buys' part)
    are in units of 1e-36 (price x size); ``buy_quote`` is ``UNKNOWN`` (below any real sum,
    and stays so as trades are added) for a bar read from a row written before it existed."""

    start_us: int
    end_us: int
    open_time: int
    open_id: int
    open: int
    close_time: int
    close_id: int
    close: int
    high: int
    low: int
    volume: int = 0
    quote: int = 0
    buy_volume: int = 0
    sell_volume: int = 0
    count: int = 0
    first_id: int = 0
    last_id: int = 0
    buy_quote: int = 0

    @classmethod
    def first(cls, start_us: int, end_us: int, tick: Tick) -> Bar:
        """A bar holding one trade."""
        time_us, trade_id, price, size = tick.time_us, tick.trade_id, tick.price, tick.size
        quote = price * size
        if tick.buy:  # positional: a bar is made for every new pane
            return cls(start_us, end_us, time_us, trade_id, price, time_us, trade_id, price, price, price,
                       size, quote, size, 0, 1, trade_id, trade_id, quote)
        return cls(start_us, end_us, time_us, trade_id, price, time_us, trade_id, price, price, price,
                   size, quote, 0, size, 1, trade_id, trade_id, 0)

    @classmethod
    def merged(cls, start_us: int, end_us: int, parts: Sequence[Bar]) -> Bar:
        """The bar of a window made of ``parts`` (its panes, at least one, in time order): a
        single pane spanning the window is the window's bar (a closed pane no longer changes)."""
        first = parts[0]
        if len(parts) == 1 and first.start_us == start_us and first.end_us == end_us:
            return first
        bar = cls(start_us, end_us, first.open_time, first.open_id, first.open, first.close_time,
                  first.close_id, first.close, first.high, first.low, first.volume, first.quote,
                  first.buy_volume, first.sell_volume, first.count, first.first_id, first.last_id,
                  first.buy_quote)
        for part in parts[1:]:
            if (part.open_time, part.open_id) < (bar.open_time, bar.open_id):
                bar.open_time, bar.open_id, bar.open = part.open_time, part.open_id, part.open
            if (part.close_time, part.close_id) > (bar.close_time, bar.close_id):
                bar.close_time, bar.close_id, bar.close = part.close_time, part.close_id, part.close
            bar.high = max(bar.high, part.high)
            bar.low = min(bar.low, part.low)
            bar.volume += part.volume
            bar.quote += part.quote
            bar.buy_volume += part.buy_volume
            bar.sell_volume += part.sell_volume
            bar.count += part.count
            bar.first_id = min(bar.first_id, part.first_id)
            bar.last_id = max(bar.last_id, part.last_id)
            bar.buy_quote += part.buy_quote
        return bar

    def add(self, tick: Tick) -> None:
        """Fold one more trade into the bar (order-independent)."""
        time_us, trade_id, price = tick.time_us, tick.trade_id, tick.price
        if time_us < self.open_time or (time_us == self.open_time and trade_id < self.open_id):
            self.open_time, self.open_id, self.open = time_us, trade_id, price
        if time_us > self.close_time or (time_us == self.close_time and trade_id > self.close_id):
            self.close_time, self.close_id, self.close = time_us, trade_id, price
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        if trade_id < self.first_id:
            self.first_id = trade_id
        elif trade_id > self.last_id:
            self.last_id = trade_id
        size = tick.size
        quote = price * size
        self.volume += size
        self.quote += quote
        if tick.buy:
            self.buy_volume += size
            self.buy_quote += quote
        else:
            self.sell_volume += size
        self.count += 1

    @property
    def vwap(self) -> int:
        """Volume-weighted average price in 1e-18 units, rounded half-even."""
        return round_units(self.quote, self.volume)


def round_units(value: int, divisor: int) -> int:
    quotient, remainder = divmod(value, divisor)
    twice = 2 * remainder
    if twice > divisor or (twice == divisor and quotient % 2):
        quotient += 1
    return quotient
