"""Web views of a worker: /health, /metrics and table queries.

Views read tables through the app's registry (``app.tables[name]``). Table queries are
routed to the worker that owns the key (Faust table_route), so any worker answers.
Errors are JSON: 404 for an unknown symbol, 400 naming the bad parameter.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from domain.candles import CANDLE_PRODUCER, ClosedCandle, bar_from_text, candle_record, live_candles
from schemas.records import utc_now
from streams.kafka.json_form import event_to_json
from streams.web.ops import install_ops_views, self_report, system_health
from streams.web.params import (
    MAX_LIMIT,
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

if TYPE_CHECKING:
    from streams.faust.app import TickTideApp

CANDLES = "candles"
HISTORY = "candle_history"
INDICATORS = "indicators"
ANOMALIES = "anomalies"
__all__ = ["MAX_LIMIT", "BadParameter", "health_report", "install_views", "query_interval", "query_limit"]


def health_report(app: TickTideApp) -> dict[str, Any]:
    """What /health answers: liveness, assignment, processed and dead-letter counts."""
    assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in app.assignor.assigned_actives())
    rebalancing = bool(getattr(app, "rebalancing", False))
    return {
        "status": "rebalancing" if rebalancing else "ok",
        "app_id": app.settings.app_id,
        "worker_id": app.settings.worker_id,
        "broker": app.settings.broker,
        "uptime_seconds": round(time.time() - app.started_at, 3),
        "agents": {name: {"processed": count} for name, count in sorted(app.processed.items())},
        "deadletters": {
            "total": app.deadletters.total,
            "by_reason": {f"{agent}/{reason}": n for (agent, reason), n in app.deadletters.counts.items()},
        },
        "pipeline": {"latency_ms": app.pipeline_latency.percentiles_ms()},
        "assigned_partitions": assigned,
        "trade_batcher": app.trade_batcher.report() if app.trade_batcher else None,
    }


def install_views(app: TickTideApp) -> None:
    """Mount the views on the app's web server."""
    windows = [spec.name for spec in app.settings.window_specs]

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        report = health_report(app)
        report.update(self_report(app), system=await system_health(app))
        return web.json(report)

    install_ops_views(app)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(app.metrics.render(), content_type="text/plain; version=0.0.4")

    if CANDLES in app.tables and HISTORY in app.tables:
        history: Any = app.tables[HISTORY]

        @app.page("/candles/{symbol}")
        async def candles(web: View, request: Request, symbol: str) -> Response:
            try:
                only_params(request, ("interval", "limit"))
                symbol = symbol_param(symbol)
                interval, limit = query_interval(request, windows), query_limit(request)
            except BadParameter as exc:
                return bad(web, exc)
            answer = await routed(app, CANDLES, symbol, web, request)
            if answer is not None:
                return answer
            driver = app.candle_driver
            current = driver.state_of(symbol) if driver is not None else None
            if driver is None or current is None:
                return error(web, 404, f"unknown symbol {symbol!r}")
            now = utc_now()
            closed = [item if isinstance(item, dict) else  # a Candle's JSON in rows written before bars
                      event_to_json(candle_record(ClosedCandle(symbol, interval, bar_from_text(item)),
                                                  CANDLE_PRODUCER, now))
                      for item in (history.get(symbol) or {}).get(interval, [])[-limit:]]
            live = live_candles(current, driver.fold, interval, now)
            return web.json({"symbol": symbol, "interval": interval, "closed": closed,
                             "live": [event_to_json(c) for c in live],
                             "watermark": current.watermark_us, "late_trades": current.late})

    if INDICATORS in app.tables:
        indicators: Any = app.tables[INDICATORS]

        @app.page("/indicators/{symbol}")
        async def indicator_view(web: View, request: Request, symbol: str) -> Response:
            try:
                only_params(request, ())
                symbol = symbol_param(symbol)
            except BadParameter as exc:
                return bad(web, exc)
            answer = await routed(app, INDICATORS, symbol, web, request)
            if answer is not None:
                return answer
            row = indicators.get(symbol)
            if row is None:
                return error(web, 404, f"unknown symbol {symbol!r}")
            return web.json({"symbol": symbol, "indicators": row})

    if ANOMALIES in app.tables:
        anomalies: Any = app.tables[ANOMALIES]

        @app.page("/anomalies")
        async def anomaly_view(web: View, request: Request) -> Response:
            try:
                only_params(request, ("symbol", "limit"))
                symbol, limit = query_symbol(request), query_limit(request)
            except BadParameter as exc:
                return bad(web, exc)
            answer = await routed(app, ANOMALIES, symbol, web, request)
            if answer is not None:
                return answer
            rows = anomalies.get(symbol)
            if rows is None:
                return error(web, 404, f"no anomalies for symbol {symbol!r}")
            return web.json({"symbol": symbol, "anomalies": rows[-limit:]})

    from streams.web.trading import install_trading_views

    install_trading_views(app)
