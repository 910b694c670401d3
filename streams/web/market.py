"""Market web views: /candles/{symbol}, /klines?symbol=&interval=, /indicators/{symbol},
/anomalies?symbol=.

Views read tables by name (tables/names.py) through the app's registry. Each query is
routed to the worker that owns the symbol (Faust table routing), so any worker answers.
Errors are JSON: 404 for an unknown symbol, 400 naming the bad parameter.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from domain.market.candles import CANDLE_PRODUCER, ClosedCandle, candle_record, live_candles
from schemas.records import utc_now
from streams.faust.context import WorkerApp
from streams.kafka.json_form import event_to_json
from streams.web.klines import PARAMETERS as KLINE_PARAMETERS
from streams.web.klines import KlineQuery, binance_code
from streams.web.params import (
    BadParameter,
    answer_for_key,
    answers_bad_parameters,
    error,
    only_params,
    query_interval,
    query_limit,
    query_symbol,
    routed,
    symbol_param,
)
from tables import names
from tables.candles import recent_history


def install_market_views(app: WorkerApp) -> None:
    """Mount the market views."""
    specs = {spec.name: spec for spec in app.settings.window_specs}
    windows = list(specs)
    history: Any = app.tables[names.CANDLE_HISTORY]
    keep = app.settings.candle_history

    @app.page("/candles/{symbol}")
    @answers_bad_parameters
    async def candles(web: View, request: Request, symbol: str) -> Response:
        only_params(request, ("interval", "limit"))
        symbol = symbol_param(symbol)
        interval, limit = query_interval(request, windows), query_limit(request)

        owner = await routed(app, names.CANDLES, symbol, web, request)
        if owner is not None:
            return owner
        driver = app.candle_driver  # the owner's state: fresher than the rows, written once a checkpoint
        current = driver.state_of(symbol) if driver is not None else None
        if driver is None or current is None:
            return error(web, 404, f"unknown symbol {symbol!r}")
        now = utc_now()
        bars = recent_history(history.get, symbol, specs[interval], current.watermark_us, keep, limit)
        closed = [event_to_json(candle_record(ClosedCandle(symbol, interval, bar), CANDLE_PRODUCER, now))
                  for bar in bars]
        return web.json({"symbol": symbol, "interval": interval, "closed": closed,
                         "live": [event_to_json(c) for c in live_candles(current, driver.fold, interval, now)],
                         "watermark": current.watermark_us, "late_trades": current.late})

    @app.page("/klines")
    async def klines(web: View, request: Request) -> Response:
        """Binance's GET /api/v3/klines: 12-field arrays, oldest first, the live kline last."""
        try:
            only_params(request, KLINE_PARAMETERS)
            symbol = query_symbol(request)
            query = KlineQuery(request, specs)
        except BadParameter as exc:
            return error(web, exc.status, str(exc), parameter=exc.parameter,
                         code=binance_code(exc.parameter), msg=str(exc))
        owner = await routed(app, names.CANDLES, symbol, web, request)
        if owner is not None:
            return owner
        driver = app.candle_driver
        current = driver.state_of(symbol) if driver is not None else None
        if driver is None or current is None:
            message = f"unknown symbol {symbol!r}"
            return error(web, 404, message, code=binance_code("symbol"), msg=message)
        spec = query.spec
        bars = [*recent_history(history.get, symbol, spec, current.watermark_us, keep, keep),
                *driver.fold.open_bars(current, spec.name)]
        return web.json(query.select(bars))

    @app.page("/indicators/{symbol}")
    @answers_bad_parameters
    async def indicator_view(web: View, request: Request, symbol: str) -> Response:
        only_params(request, ())
        symbol = symbol_param(symbol)
        driver = app.analysis_driver  # the owner's memory: ahead of the rows by up to a checkpoint
        return await answer_for_key(app, names.INDICATORS, symbol, web, request,
                                    lambda row: web.json({"symbol": symbol, "indicators": row}),
                                    f"unknown symbol {symbol!r}", held=driver.current_row if driver else None)

    @app.page("/anomalies")
    @answers_bad_parameters
    async def anomaly_view(web: View, request: Request) -> Response:
        only_params(request, ("symbol", "limit"))
        symbol, limit = query_symbol(request), query_limit(request)
        return await answer_for_key(app, names.ANOMALIES, symbol, web, request,
                                    lambda rows: web.json({"symbol": symbol, "anomalies": rows[-limit:]}),
                                    f"no anomalies for symbol {symbol!r}")
