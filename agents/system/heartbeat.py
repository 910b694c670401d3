"""Every worker, and every agent in it, says it is alive and how it is doing: a Heartbeat
per component on system.heartbeats each period, a ComponentStatus on system.status when
the worker's lifecycle changes (starting, running, degraded, stopped)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from schemas.records import ComponentStatus, HealthStatus, Heartbeat, Lifecycle, utc_now
from streams.faust.context import WorkerApp
from streams.ops.worker_status import DOWN, AgentStats

COMPONENT = "worker"
PRODUCER = "agent.heartbeat"
SEND_TIMEOUT_S = 5.0
log = logging.getLogger(__name__)
HEALTH_OF = {Lifecycle.RUNNING: HealthStatus.HEALTHY, Lifecycle.DEGRADED: HealthStatus.DEGRADED,
             Lifecycle.FAILED: HealthStatus.DOWN, Lifecycle.STOPPED: HealthStatus.DOWN}
LIVE = (Lifecycle.STARTING, Lifecycle.RUNNING, Lifecycle.DEGRADED)


def install(app: WorkerApp) -> None:
    """Register the heartbeat timer and the lifecycle hooks."""
    sequence = itertools.count()
    beats = app.typed_topics["system.heartbeats"]
    statuses = app.typed_topics["system.status"]
    worker_status = app.worker_status
    worker_status.lifecycle = Lifecycle.CONFIGURED
    broker_ok = True
    total = AgentStats()  # the whole worker, for its events per second

    async def announce(lifecycle: Lifecycle, detail: str) -> None:
        """Enter ``lifecycle`` and say so for the worker and each of its agents."""
        worker_status.lifecycle = lifecycle
        now = utc_now()
        for component in (COMPONENT, *sorted(app.agents)):
            await statuses.send(ComponentStatus(
                envelope=ComponentStatus.envelope_for(event_time=now, producer=PRODUCER),
                component=component, worker_id=app.settings.worker_id,
                status=HEALTH_OF.get(lifecycle, HealthStatus.UNKNOWN), detail=detail, lifecycle=lifecycle))

    def heartbeat(component: str, *, events_processed: int, events_per_second: float, errors: int,
                  lag: int, latency_ms: list[float], last_event_time: datetime | None = None) -> Heartbeat:
        return Heartbeat(
            envelope=Heartbeat.envelope_for(event_time=utc_now(), producer=PRODUCER),
            component=component, worker_id=app.settings.worker_id, host=socket.gethostname(),
            pid=os.getpid(), uptime_seconds=time.time() - worker_status.started_at, sequence=next(sequence),
            lifecycle=Lifecycle.FAILED if component in worker_status.failures else worker_status.lifecycle,
            period_seconds=app.settings.heartbeat_period_s,
            dependencies=dict(worker_status.dependencies), events_processed=events_processed,
            events_per_second=events_per_second, errors=errors, lag=lag, latency_ms=latency_ms,
            last_event_time=last_event_time)

    @app.task
    async def starting() -> None:
        await announce(Lifecycle.STARTING, "worker started")

    announced_failures: set[str] = set()

    async def announce_failures() -> None:
        """A ComponentStatus FAILED for each component that died since the last beat."""
        for component, reason in list(worker_status.failures.items()):
            if component not in announced_failures:
                await statuses.send(ComponentStatus(
                    envelope=ComponentStatus.envelope_for(event_time=utc_now(), producer=PRODUCER),
                    component=component, worker_id=app.settings.worker_id, status=HealthStatus.DOWN,
                    detail=reason, lifecycle=Lifecycle.FAILED))
                announced_failures.add(component)

    @app.timer(interval=app.settings.heartbeat_period_s, name="system.heartbeat")
    async def beat() -> None:
        nonlocal broker_ok
        await announce_failures()
        deps = await asyncio.to_thread(worker_status.check_dependencies, broker_ok)
        wanted = Lifecycle.DEGRADED if DOWN in deps.values() else Lifecycle.RUNNING
        if worker_status.lifecycle in LIVE and worker_status.recovered() and wanted != worker_status.lifecycle:
            await announce(wanted, ", ".join(f"{k} {v}" for k, v in deps.items() if v == DOWN) or "ready")
        try:
            pending = [await beats.send_pending(record) for record in heartbeats()]
            await asyncio.wait_for(asyncio.gather(*pending), SEND_TIMEOUT_S)
            broker_ok = True
        except Exception as error:  # the broker is the dependency we report on
            broker_ok = False
            log.warning("heartbeat not delivered: %s", error)

    def heartbeats() -> list[Heartbeat]:
        """The worker's heartbeat, then one per agent."""
        now, lags = time.time(), worker_status.lag()
        total.processed = sum(app.processed.values())
        records = [heartbeat(COMPONENT, events_processed=total.processed, events_per_second=total.rate(now),
                             errors=app.deadletters.total + sum(s.errors for s in worker_status.agents.values()),
                             lag=sum(lags.values()), latency_ms=[])]
        for name in sorted(app.agents):
            stats, topics = worker_status.stats(name), worker_status.input_topics(name)
            records.append(heartbeat(
                name, events_processed=stats.processed, events_per_second=stats.rate(now),
                errors=worker_status.errors_of(name), latency_ms=stats.drain_latency_ms(),
                last_event_time=from_seconds(stats.last_event_s),
                lag=sum(n for tp, n in lags.items() if tp.rsplit("[", 1)[0] in topics)))
        return records

    @app.on_before_shutdown.connect
    async def stopping(sender: Any, *_: Any, **__: Any) -> None:
        try:
            await asyncio.wait_for(announce(Lifecycle.STOPPED, "worker shut down"), SEND_TIMEOUT_S)
        except Exception as error:  # shutting down anyway: missed beats will tell
            log.warning("could not announce the shutdown: %s", error)


def from_seconds(seconds: float | None) -> datetime | None:
    """A Unix time as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None
