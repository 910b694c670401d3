"""Binance's kline form of candles, for ``GET /klines?symbol=S&interval=I[&limit=N]``.

Each kline is Binance's 12-field array: open time (ms), open, high, low, close, volume,
close time (ms), quote asset volume, number of trades, taker buy base asset volume, taker
buy quote asset volume, and an ignored "0"; decimals as strings, as Binance sends them,
so tools that chart Binance klines read ticktide's candles unchanged. Only tumbling window
families are klines (Binance has no hopping intervals). The query is checked here, before
anything uses it; every bad parameter is a ``BadParameter`` naming it, with Binance's
error code for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from faust.web import Request

from domain.market.bars import Bar, round_units
from domain.market.candles import UNITS, close_time_us, taker_buy_quote_units
from domain.market.windows import WindowSpec
from streams.web.params import BadParameter, query_limit

DEFAULT_LIMIT = 500
"""Binance's default number of klines."""
PARAMETERS = ("symbol", "interval", "limit", "startTime", "endTime")
BINANCE_CODES = {"symbol": -1121, "interval": -1120}
"""Binance's error codes for a bad symbol and interval; any other bad parameter is -1100."""
_MILLIS = re.compile(r"[0-9]{1,15}")
_MS_US = 1000


def binance_code(parameter: str) -> int:
    """Binance's error code for a bad ``parameter``."""
    return BINANCE_CODES.get(parameter, -1100)


def decimal_text(units: int) -> str:
    """An amount in 1e-18 units as plain decimal text ("64000.1", "0.003", "42")."""
    whole, fraction = divmod(abs(units), UNITS)
    text = f"{whole}.{fraction:018d}".rstrip("0").rstrip(".")
    return f"-{text}" if units < 0 else text


def kline(bar: Bar) -> list[Any]:
    """A bar as Binance's kline array (taker buy quote null if the bar cannot know it)."""
    buy_quote = taker_buy_quote_units(bar)
    return [bar.start_us // _MS_US, decimal_text(bar.open), decimal_text(bar.high), decimal_text(bar.low),
            decimal_text(bar.close), decimal_text(bar.volume), close_time_us(bar) // _MS_US,
            decimal_text(round_units(bar.quote, UNITS)), bar.count, decimal_text(bar.buy_volume),
            None if buy_quote is None else decimal_text(buy_quote), "0"]


def kline_interval(request: Request, specs: dict[str, WindowSpec]) -> WindowSpec:
    """The required `interval`: one of the configured tumbling window families."""
    tumbling = [name for name, spec in specs.items() if spec.size_us == spec.step_us]
    text = request.query.get("interval")
    if not text:
        raise BadParameter("interval", f"interval is required, one of {', '.join(tumbling)}")
    if text not in tumbling:
        shown = repr(text[:16] + ("..." if len(text) > 16 else ""))
        raise BadParameter("interval", f"interval must be one of {', '.join(tumbling)} (the tumbling windows "
                                       f"configured), got {shown}")
    return specs[text]


def _millis(request: Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    if _MILLIS.fullmatch(text) is None:
        shown = repr(text[:20] + ("..." if len(text) > 20 else ""))
        raise BadParameter(name, f"{name} must be milliseconds since the epoch in ASCII digits, got {shown}")
    return int(text)


class KlineQuery:
    """A checked /klines query: interval, limit and the optional open-time range (ms)."""

    def __init__(self, request: Request, specs: dict[str, WindowSpec]) -> None:
        self.spec = kline_interval(request, specs)
        self.limit = query_limit(request, DEFAULT_LIMIT)
        self.start_ms = _millis(request, "startTime")
        self.end_ms = _millis(request, "endTime")
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise BadParameter("endTime", f"endTime {self.end_ms} is before startTime {self.start_ms}")

    def select(self, bars: Iterable[Bar]) -> list[list[Any]]:
        """The klines of ``bars`` (closed and live, any order): oldest first, those opening in
        [startTime, endTime]; the first ``limit`` from startTime, else the newest ``limit``."""
        by_start = {bar.start_us: bar for bar in bars}
        chosen = [by_start[start] for start in sorted(by_start)
                  if (self.start_ms is None or start // _MS_US >= self.start_ms)
                  and (self.end_ms is None or start // _MS_US <= self.end_ms)]
        chosen = chosen[:self.limit] if self.start_ms is not None else chosen[-self.limit:]
        return [kline(bar) for bar in chosen]


