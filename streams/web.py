"""Web views of a worker: /health, /metrics and table queries.

Views read tables through the app's registry (``app.tables[name]``). Table queries are
routed to the worker that owns the key (Faust table_route), so any worker answers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

if TYPE_CHECKING:
    from streams.app import TickTideApp

TICKERS_TABLE = "tickers"


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
        "assigned_partitions": assigned,
    }


def install_views(app: TickTideApp) -> None:
    """Mount the views on the app's web server."""

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json(health_report(app))

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(app.metrics.render(), content_type="text/plain; version=0.0.4")

    if TICKERS_TABLE in app.tables:
        tickers: Any = app.tables[TICKERS_TABLE]

        @app.page("/tickers/{symbol}")
        @app.table_route(table=tickers, match_info="symbol")
        async def ticker(web: View, request: Request, symbol: str) -> Response:
            value = tickers.get(symbol)
            if value is None:
                return web.json({"error": f"unknown symbol {symbol!r}"}, status=404)
            return web.json(value)
