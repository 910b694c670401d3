"""The health table: one row per component instance (``tables.names.health_key``), the
domain.ops.health fold of its heartbeats and lifecycle changes as JSON.

system.heartbeats and system.status have one partition, so one worker holds the whole
table and answers /health's system view for every worker (requests are routed to it).
"""

from __future__ import annotations

from typing import Any, cast

from faust.types import TableT

from domain.clock import to_micros as _us
from domain.ops import health as fold
from schemas.records import ComponentStatus, Heartbeat
from streams.faust.context import WorkerApp
from tables.names import HEALTH, health_key
from tables.symbol_table import STORE_OPTIONS


def declare(app: WorkerApp) -> TableT[str, Any]:
    """The health table (declared once)."""
    # not `app.tables.get(name) or ...`: an empty table is falsy
    table = app.tables[HEALTH] if HEALTH in app.tables else app.Table(
        HEALTH, key_type=str, value_type=None, partitions=1, options=dict(STORE_OPTIONS),
        help="Health of every component instance, folded from heartbeats and status changes.")
    return cast("TableT[str, Any]", table)


def beat_input(beat: Heartbeat) -> fold.Beat:
    """What the fold needs from a Heartbeat."""
    return fold.Beat(
        component=beat.component, worker_id=beat.worker_id, at_us=_us(beat.envelope.event_time),
        lifecycle=beat.lifecycle.value, period_s=beat.period_seconds, processed=beat.events_processed,
        rate=beat.events_per_second, errors=beat.errors, lag=beat.lag,
        last_event_us=_us(beat.last_event_time) if beat.last_event_time else None,
        latency_ms=tuple(beat.latency_ms), dependencies=beat.dependencies)


def status_input(status: ComponentStatus) -> fold.StatusChange:
    """What the fold needs from a ComponentStatus."""
    return fold.StatusChange(component=status.component, worker_id=status.worker_id,
                             at_us=_us(status.envelope.event_time), lifecycle=status.lifecycle.value,
                             detail=status.detail)


def load(table: TableT[str, Any], item: fold.HealthInput) -> fold.InstanceHealth:
    """The state of the instance ``item`` is about (new for an instance not seen yet)."""
    row = table.get(health_key(item.worker_id, item.component))
    return fold.from_row(row) if row is not None else fold.InstanceHealth.first_seen(item)


def store(table: TableT[str, Any], state: fold.InstanceHealth) -> None:
    """Write an instance's state."""
    table[health_key(state.worker_id, state.component)] = fold.to_row(state)


def instances(table: TableT[str, Any]) -> list[fold.InstanceHealth]:
    """Every instance's state held by this worker."""
    return [fold.from_row(row) for _, row in table.items()]
