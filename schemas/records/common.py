"""What every record shares (schemas/common/*.avsc): the envelope, the ``Event`` base and
the enums several schemas use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar


class Priority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class Lifecycle(StrEnum):
    INITIALIZED = "INITIALIZED"
    CONFIGURED = "CONFIGURED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    DEGRADED = "DEGRADED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (what Avro timestamp-micros decodes to)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """Metadata every event carries."""

    event_id: str
    event_type: str
    event_time: datetime
    ingest_time: datetime
    producer: str
    schema_version: int
    correlation_id: str | None = None
    causation_id: str | None = None
    priority: Priority = Priority.NORMAL
    retry_count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event record: an envelope plus a payload."""

    AVRO_NAME: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    envelope: Envelope

    @classmethod
    def envelope_for(
        cls,
        *,
        event_time: datetime,
        producer: str,
        event_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        priority: Priority = Priority.NORMAL,
        ingest_time: datetime | None = None,
    ) -> Envelope:
        """A fresh envelope for an event of this type (random id unless one is given)."""
        return Envelope(
            event_id=event_id or str(uuid.uuid4()),
            event_type=cls.__name__,
            event_time=event_time,
            ingest_time=ingest_time or utc_now(),
            producer=producer,
            schema_version=cls.SCHEMA_VERSION,
            correlation_id=correlation_id,
            causation_id=causation_id,
            priority=priority,
        )
