"""Health views: /health, /health/system, /live, /ready and /metrics.

/health stays 200 (it is a report: read its ``status`` fields); the probes answer with
codes a load balancer or Kubernetes understands: /live 200 while the worker's event loop
runs and it has not stopped, /ready 200 once it has partitions and its tables are
recovered, 503 otherwise.

The system view comes from the health table, which lives on one worker (its topics have
one partition): other workers fetch it from that one.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from faust.web import Request, Response, View

from domain.ops.health import system_view
from schemas.records import Lifecycle, utc_now
from streams.faust.context import WorkerApp
from tables import health as health_table
from tables import names

FETCH_TIMEOUT_S = 3.0


def health_report(app: WorkerApp) -> dict[str, Any]:
    """What /health answers first: liveness, assignment, processed and dead-letter counts."""
    status = app.worker_status
    return {
        "status": "rebalancing" if app.rebalancing else "ok",
        "app_id": app.settings.app_id,
        "worker_id": app.settings.worker_id,
        "broker": app.settings.broker,
        "uptime_seconds": round(time.time() - status.started_at, 3),
        "agents": {name: {"processed": count} for name, count in sorted(app.processed.items())},
        "deadletters": {
            "total": app.deadletters.total,
            "by_reason": {f"{agent}/{reason}": n for (agent, reason), n in app.deadletters.counts.items()},
        },
        "pipeline": {"latency_ms": app.pipeline_latency.percentiles_ms()},
        "assigned_partitions": [f"{topic}[{partition}]" for topic, partition in status.runtime.assigned()],
        "trade_reader": app.trade_reader.report(),
        "candle_fold": app.candle_driver.report() if app.candle_driver is not None else None,
    }


def local_system_view(app: WorkerApp) -> dict[str, Any] | None:
    """The system view if this worker holds the health table, else None."""
    table: Any = app.tables.get(names.HEALTH)
    if table is None:
        return None
    changelog = names.changelog_topic(app.settings.app_id, names.HEALTH)
    if not any(topic == changelog for topic, _ in app.worker_status.runtime.assigned()):
        return None
    return system_view(health_table.instances(table), time.time_ns() // 1000)


async def system_health(app: WorkerApp) -> dict[str, Any]:
    """The whole system's health, from the health table (wherever it is held)."""
    local = local_system_view(app)
    if local is not None:
        return local
    if names.HEALTH not in app.tables:
        return {"status": "UNKNOWN", "error": "no health table"}
    try:
        url = str(app.router.key_store(names.HEALTH, names.SYSTEM_KEY)).rstrip("/")
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(f"{url}/health/system") as response:
            body: dict[str, Any] = await response.json()
            return body
    except Exception as error:  # during a rebalance nobody may hold it yet
        return {"status": "UNKNOWN", "error": f"health table not reachable: {type(error).__name__} {error}"}


def self_report(app: WorkerApp) -> dict[str, Any]:
    """This worker's lifecycle, readiness and consumer lag (added to /health)."""
    status = app.worker_status
    ready, reason = status.ready()
    lags = status.lag()
    return {"lifecycle": status.lifecycle.value, "ready": ready, "ready_reason": reason,
            "failed_components": dict(status.failures),
            "dependencies": status.dependencies, "lag": {"total": sum(lags.values()), "partitions": lags},
            "checked_at": utc_now().isoformat()}


def install_health_views(app: WorkerApp) -> None:
    """Mount /health, /health/system, /live, /ready and /metrics."""
    status = app.worker_status

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        report = health_report(app)
        report.update(self_report(app), system=await system_health(app))
        return web.json(report)

    @app.page("/health/system")
    async def system(web: View, request: Request) -> Response:
        view = local_system_view(app)
        if view is None:
            return web.json({"status": "UNKNOWN", "error": "this worker does not hold the health table"},
                            status=503)
        return web.json(view)

    @app.page("/live")
    async def live(web: View, request: Request) -> Response:
        alive = status.lifecycle not in (Lifecycle.STOPPED, Lifecycle.FAILED)
        return web.json({"live": alive, "lifecycle": status.lifecycle.value,
                         "worker_id": app.settings.worker_id}, status=200 if alive else 503)

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        ok, reason = status.ready()
        return web.json({"ready": ok, "reason": reason, "lifecycle": status.lifecycle.value,
                         "worker_id": app.settings.worker_id}, status=200 if ok else 503)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(app.metrics.render(), content_type="text/plain; version=0.0.4")
