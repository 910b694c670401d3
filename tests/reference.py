"""Reference computations for candle tests, independent of the fold's panes: event-time
windows the plain way (one bar per window), and a batch OHLCV over the trades that were not late."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from domain.market.bars import Bar, Tick
from domain.market.windows import WindowSpec

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


def epoch_ms(text: str) -> int:
    """An ISO-8601 time as milliseconds since the epoch."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def recorded_ws_trades(path: Path) -> list[dict[str, Any]]:
    """The trade messages of a recorded websocket file, as Binance sent them."""
    with gzip.open(path, "rt") as lines:
        return [json.loads(line)["data"] for line in lines]


def plain_1m_candles(trades: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """1m candles the plain way, from the websocket messages as Binance sent them."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for trade in trades:
        groups[(trade["s"], trade["T"] // 60_000 * 60_000)].append(trade)
    candles = {}
    for key, members in groups.items():
        ordered = sorted(members, key=lambda t: (t["T"], t["t"]))
        prices = [Decimal(t["p"]) for t in members]
        candles[key] = {
            "open": Decimal(ordered[0]["p"]), "close": Decimal(ordered[-1]["p"]),
            "high": max(prices), "low": min(prices),
            "volume": sum(Decimal(t["q"]) for t in members),
            "quote_volume": sum(Decimal(t["p"]) * Decimal(t["q"]) for t in members),
            "buy_volume": sum(Decimal(t["q"]) for t in members if not t["m"]),  # buyer not maker: taker bought
            "trade_count": len(members),
            "first_trade_id": min(t["t"] for t in members), "last_trade_id": max(t["t"] for t in members),
        }
    return candles


def as_plain_candle(candle: dict[str, Any]) -> tuple[tuple[str, int], dict[str, Any]]:
    """A candle as JSON (``consume``, ``/candles``) in ``plain_1m_candles``' form."""
    key = (candle["symbol"], epoch_ms(candle["window_start"]))
    fields = {name: Decimal(candle[name]) for name in ("open", "close", "high", "low", "volume", "quote_volume",
                                                       "buy_volume")}
    return key, {**fields, "trade_count": candle["trade_count"], "first_trade_id": candle["first_trade_id"],
                 "last_trade_id": candle["last_trade_id"]}
