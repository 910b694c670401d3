"""Reference computations for candle tests, independent of the fold's panes: event-time
windows the plain way (one bar per window), and a batch OHLCV over the trades that were not late."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from domain.candles import Bar, Tick
from domain.windows import WindowSpec

Key = tuple[str, str, int]  # symbol, interval, window start (us)


@dataclass
class Expected:
    """Final candles by key, and the ticks judged late."""

    candles: dict[Key, Bar]
    late: list[Tick]


def fold_reference(ticks: Iterable[Tick], specs: tuple[WindowSpec, ...], grace_us: int,
                   close_at_end: bool = True) -> Expected:
    """Event-time windows done the plain way, knowing nothing of the fold's panes: per symbol
    a watermark, a trade older than watermark - grace is late, every other trade goes into
    each window that holds it; the windows that ended by the final boundary are final (all of
    them with ``close_at_end``, as the idle timeout does)."""
    watermarks: dict[str, int] = {}
    boundaries: dict[str, int] = defaultdict(lambda: -(2**62))
    bars: dict[Key, Bar] = {}
    late: list[Tick] = []
    for tick in ticks:
        if tick.time_us < boundaries[tick.symbol]:
            late.append(tick)
            continue
        for spec in specs:
            for start in spec.starts_for(tick.time_us):
                key = (tick.symbol, spec.name, start)
                if key in bars:
                    bars[key].add(tick)
                else:
                    bars[key] = Bar.first(start, start + spec.size_us, tick)
        if tick.time_us > watermarks.get(tick.symbol, -(2**62)):
            watermarks[tick.symbol] = tick.time_us
            boundaries[tick.symbol] = max(boundaries[tick.symbol], tick.time_us - grace_us)
    final = {key: bar for key, bar in bars.items() if close_at_end or bar.end_us <= boundaries[key[0]]}
    return Expected(final, late)


def batch_ohlcv(ticks: Iterable[Tick], specs: tuple[WindowSpec, ...]) -> dict[Key, dict[str, int]]:
    """Plain group-by OHLCV, knowing nothing of the fold: the independent check."""
    groups: dict[Key, list[Tick]] = defaultdict(list)
    for tick in ticks:
        for spec in specs:
            for start in spec.starts_for(tick.time_us):
                groups[(tick.symbol, spec.name, start)].append(tick)
    result = {}
    for key, members in groups.items():
        ordered = sorted(members, key=lambda t: (t.time_us, t.trade_id))
        result[key] = {
            "open": ordered[0].price, "close": ordered[-1].price,
            "high": max(t.price for t in members), "low": min(t.price for t in members),
            "volume": sum(t.size for t in members),
            "quote": sum(t.price * t.size for t in members),
            "buy_volume": sum(t.size for t in members if t.buy),
            "buy_quote": sum(t.price * t.size for t in members if t.buy),
            "count": len(members),
            "first_id": min(t.trade_id for t in members), "last_id": max(t.trade_id for t in members),
        }
    return result


def bar_summary(bar: Bar) -> dict[str, int]:
    """The fields of a bar that ``batch_ohlcv`` computes."""
    return {"open": bar.open, "close": bar.close, "high": bar.high, "low": bar.low,
            "volume": bar.volume, "quote": bar.quote, "buy_volume": bar.buy_volume,
            "buy_quote": bar.buy_quote, "count": bar.count, "first_id": bar.first_id, "last_id": bar.last_id}
