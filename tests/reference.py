"""Reference computations for candle tests: the same pure fold run over the input in
order per symbol, and an independent batch OHLCV over the trades that were not late."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from domain.candles import Bar, ClosedCandle, Outcome, SymbolCandles, Tick, apply_trade, close_all
from domain.windows import WindowSpec

Key = tuple[str, str, int]  # symbol, interval, window start (us)


@dataclass
class Expected:
    """Final candles by key, and the ticks judged late."""

    candles: dict[Key, Bar]
    late: list[Tick]


def fold_reference(ticks: Iterable[Tick], specs: tuple[WindowSpec, ...], grace_us: int,
                   close_at_end: bool = True) -> Expected:
    """Run the fold over ``ticks`` (in per-symbol arrival order); close everything at the
    end (as the idle timeout does)."""
    states: dict[str, SymbolCandles] = {}
    candles: dict[Key, Bar] = {}
    late: list[Tick] = []
    offsets: dict[str, int] = defaultdict(int)

    def keep(closed: list[ClosedCandle]) -> None:
        for c in closed:
            candles[(c.symbol, c.interval, c.bar.start_us)] = c.bar

    for tick in ticks:
        state = states.setdefault(tick.symbol, SymbolCandles(tick.symbol))
        offsets[tick.symbol] += 1
        outcome, closed = apply_trade(state, tick, specs, grace_us, 0, offsets[tick.symbol])
        if outcome is Outcome.LATE:
            late.append(tick)
        keep(closed)
    if close_at_end:
        for state in states.values():
            keep(close_all(state))
    return Expected(candles, late)


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
            "count": len(members),
            "first_id": min(t.trade_id for t in members), "last_id": max(t.trade_id for t in members),
        }
    return result


def bar_summary(bar: Bar) -> dict[str, int]:
    """The fields of a bar that ``batch_ohlcv`` computes."""
    return {"open": bar.open, "close": bar.close, "high": bar.high, "low": bar.low,
            "volume": bar.volume, "quote": bar.quote, "buy_volume": bar.buy_volume,
            "count": bar.count, "first_id": bar.first_id, "last_id": bar.last_id}
