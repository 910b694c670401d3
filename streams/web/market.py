"""Market web views: /candles/{symbol}, /indicators/{symbol}, /anomalies?symbol=.

Views read tables by name (tables/names.py) through the app's registry. Each query is
routed to the worker that owns the symbol (Faust table routing), so any worker answers.
Errors are JSON: 404 for an unknown symbol, 400 naming the bad parameter.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from domain.candles import live_candles
from schemas.records import utc_now
from streams.faust.context import WorkerApp
from streams.kafka.json_form import event_to_json
from streams.web.params import (
    BadParameter,
    bad,
    error,
    only_params,
    query_interval,
    query_limit,
    query_symbol,
    routed,
    symbol_param,
)
from tables import names


def install_market_views(app: WorkerApp) -> None:
    """Mount the market views (for the tables this worker declares)."""
    windows = [spec.name for spec in app.settings.window_specs]

    if names.CANDLES in app.tables and names.CANDLE_HISTORY in app.tables:
        state: Any = app.tables[names.CANDLES]
        history: Any = app.tables[names.CANDLE_HISTORY]

        @app.page("/candles/{symbol}")
        async def candles(web: View, request: Request, symbol: str) -> Response:
            try:
                only_params(request, ("interval", "limit"))
                symbol = symbol_param(symbol)
                interval, limit = query_interval(request, windows), query_limit(request)
            except BadParameter as exc:
                return bad(web, exc)
            answer = await routed(app, names.CANDLES, symbol, web, request)
            if answer is not None:
                return answer
            row = state.get(symbol)
            if row is None:
                return error(web, 404, f"unknown symbol {symbol!r}")
            closed = (history.get(symbol) or {}).get(interval, [])[-limit:]
            return web.json({"symbol": symbol, "interval": interval, "closed": closed,
                             "live": [event_to_json(c) for c in live_candles(row, interval, utc_now())],
                             "watermark": row["watermark_us"], "late_trades": row["late"]})

    if names.INDICATORS in app.tables:
        indicators: Any = app.tables[names.INDICATORS]

        @app.page("/indicators/{symbol}")
        async def indicator_view(web: View, request: Request, symbol: str) -> Response:
            try:
                only_params(request, ())
                symbol = symbol_param(symbol)
            except BadParameter as exc:
                return bad(web, exc)
            answer = await routed(app, names.INDICATORS, symbol, web, request)
            if answer is not None:
                return answer
            row = indicators.get(symbol)
            if row is None:
                return error(web, 404, f"unknown symbol {symbol!r}")
            return web.json({"symbol": symbol, "indicators": row})

    if names.ANOMALIES in app.tables:
        anomalies: Any = app.tables[names.ANOMALIES]

        @app.page("/anomalies")
        async def anomaly_view(web: View, request: Request) -> Response:
            try:
                only_params(request, ("symbol", "limit"))
                symbol, limit = query_symbol(request), query_limit(request)
            except BadParameter as exc:
                return bad(web, exc)
            answer = await routed(app, names.ANOMALIES, symbol, web, request)
            if answer is not None:
                return answer
            rows = anomalies.get(symbol)
            if rows is None:
                return error(web, 404, f"no anomalies for symbol {symbol!r}")
            return web.json({"symbol": symbol, "anomalies": rows[-limit:]})
