"""System records (schemas/system/*.avsc): heartbeats, component status, dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from schemas.records.common import Event, Lifecycle


class HealthStatus(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.system.Heartbeat"
    SCHEMA_VERSION: ClassVar[int] = 2
    component: str
    worker_id: str
    host: str
    pid: int
    uptime_seconds: float
    events_processed: int
    sequence: int
    lifecycle: Lifecycle = Lifecycle.RUNNING
    period_seconds: float = 5.0
    events_per_second: float = 0.0
    errors: int = 0
    last_event_time: datetime | None = None
    lag: int = 0
    latency_ms: list[float] = field(default_factory=list)
    dependencies: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentStatus(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.system.ComponentStatus"
    SCHEMA_VERSION: ClassVar[int] = 2
    component: str
    worker_id: str
    status: HealthStatus
    detail: str
    lifecycle: Lifecycle = Lifecycle.RUNNING


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.system.DeadLetter"
    source_topic: str
    source_partition: int
    source_offset: int
    original_key: bytes | None
    original_value: bytes | None
    agent: str
    reason: str
    error_type: str
    error_message: str
    attempt: int
