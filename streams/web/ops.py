"""Operations views: the system part of /health, /live and /ready.

/health stays 200 (it is a report: read its ``status`` fields); the probes answer with
codes a load balancer or Kubernetes understands: /live 200 while the worker's event loop
runs and it has not stopped, /ready 200 once it has partitions and its tables are
recovered, 503 otherwise.

The system view comes from the health table, which lives on one worker (its topics have
one partition): other workers fetch it from that one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import aiohttp
from faust.web import Request, Response, View

from schemas.records import Lifecycle, utc_now
from streams.ops.scrape_metrics import install_ops_metrics

if TYPE_CHECKING:
    from streams.faust.app import TickTideApp

HEALTH = "health"
SYSTEM_KEY = "system"
FETCH_TIMEOUT_S = 3.0


def local_system_view(app: TickTideApp) -> dict[str, Any] | None:
    """The system view if this worker holds the health table, else None."""
    from domain.health import system_view

    table: Any = app.tables.get(HEALTH)
    if table is None:
        return None
    held = {tp.topic for tp in app.assignor.assigned_actives()}
    if not any(topic.endswith(f"-{HEALTH}-changelog") for topic in held):
        return None
    return system_view((row for _, row in table.items()), time.time_ns() // 1000)


async def system_health(app: TickTideApp) -> dict[str, Any]:
    """The whole system's health, from the health table (wherever it is held)."""
    local = local_system_view(app)
    if local is not None:
        return local
    if HEALTH not in app.tables:
        return {"status": "UNKNOWN", "error": "no health table"}
    try:
        url = str(app.router.key_store(HEALTH, SYSTEM_KEY)).rstrip("/")
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(f"{url}/health/system") as response:
            body: dict[str, Any] = await response.json()
            return body
    except Exception as error:  # during a rebalance nobody may hold it yet
        return {"status": "UNKNOWN", "error": f"health table not reachable: {type(error).__name__} {error}"}


def self_report(app: TickTideApp) -> dict[str, Any]:
    """This worker's lifecycle, readiness and consumer lag (added to /health)."""
    ready, reason = app.probe.ready()
    lags = app.probe.lag()
    return {"lifecycle": app.probe.lifecycle.value, "ready": ready, "ready_reason": reason,
            "failed_components": dict(app.probe.failures),
            "dependencies": app.probe.dependencies, "lag": {"total": sum(lags.values()), "partitions": lags},
            "checked_at": utc_now().isoformat()}


def install_ops_views(app: TickTideApp) -> None:
    """Mount /health/system, /live and /ready; add the scrape-time metrics."""
    install_ops_metrics(app)
    from streams.web.dashboard import install_dashboard

    install_dashboard(app)

    @app.page("/health/system")
    async def system(web: View, request: Request) -> Response:
        view = local_system_view(app)
        if view is None:
            return web.json({"status": "UNKNOWN", "error": "this worker does not hold the health table"},
                            status=503)
        return web.json(view)

    @app.page("/live")
    async def live(web: View, request: Request) -> Response:
        alive = app.probe.lifecycle not in (Lifecycle.STOPPED, Lifecycle.FAILED)
        return web.json({"live": alive, "lifecycle": app.probe.lifecycle.value,
                         "worker_id": app.settings.worker_id}, status=200 if alive else 503)

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        ok, reason = app.probe.ready()
        return web.json({"ready": ok, "reason": reason, "lifecycle": app.probe.lifecycle.value,
                         "worker_id": app.settings.worker_id}, status=200 if ok else 503)
