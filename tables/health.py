"""The health table: one row per component instance (``tables.names.health_key``), the
domain.health fold of its heartbeats and lifecycle changes.

system.heartbeats and system.status have one partition, so one worker holds the whole
table and answers /health's system view for every worker (requests are routed to it).
"""

from __future__ import annotations

from typing import Any, cast

from faust.types import TableT

from domain import health as fold
from domain.clock import to_micros as _us
from schemas.records import ComponentStatus, Heartbeat
from streams.faust.context import WorkerApp
from tables.names import HEALTH, health_key


def declare(app: WorkerApp) -> TableT[str, Any]:
    """The health table (declared once)."""
    # not `app.tables.get(name) or ...`: an empty table is falsy
    table = app.tables[HEALTH] if HEALTH in app.tables else app.Table(
        HEALTH, key_type=str, value_type=None, partitions=1,
        help="Health of every component instance, folded from heartbeats and status changes.")
    return cast("TableT[str, Any]", table)


def record_beat(table: TableT[str, Any], beat: Heartbeat) -> None:
    """Fold one heartbeat into its instance's row."""
    key = health_key(beat.worker_id, beat.component)
    table[key] = fold.apply_beat(table.get(key), fold.Beat(
        component=beat.component, worker_id=beat.worker_id, at_us=_us(beat.envelope.event_time),
        lifecycle=beat.lifecycle.value, period_s=beat.period_seconds, processed=beat.events_processed,
        rate=beat.events_per_second, errors=beat.errors, lag=beat.lag,
        last_event_us=_us(beat.last_event_time) if beat.last_event_time else None,
        latency_ms=tuple(beat.latency_ms), dependencies=beat.dependencies))


def record_status(table: TableT[str, Any], status: ComponentStatus) -> None:
    """Fold one lifecycle change into its instance's row."""
    key = health_key(status.worker_id, status.component)
    table[key] = fold.apply_status(table.get(key), status.component, status.worker_id,
                                   _us(status.envelope.event_time), status.lifecycle.value, status.detail)

