"""The dead-letter policy every agent uses.

A record that cannot be decoded, or whose processing raises, goes to system.deadletter
with its original key and value bytes, where it came from, which agent failed and why;
the agent goes on with the next record, and the failure is counted.

    async for event in stream.events():
        async with app.deadletters.guard(event.message, agent="market.trades"):
            trade = app.codec.decode_as(event.message.value, Trade)
            ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter as Metric

from schemas.records import DeadLetter, utc_now
from streams.errors import DecodeError, InvalidValue
from streams.kafka.catalog import letter_bytes
from streams.kafka.codec import AvroCodec

if TYPE_CHECKING:  # Faust (and aiohttp under it) costs every CLI command ~0.2 s of CPU to import
    from faust.types import TopicT

log = logging.getLogger(__name__)
DEADLETTER_TOPIC = "system.deadletter"
MAX_ERROR_MESSAGE = 2000


class SourceRecord(Protocol):
    """What a dead letter needs to know about the failed record (a Faust Message fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> Any: ...
    @property
    def value(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A source record by value (e.g. one record of a fetched run)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _size(record: SourceRecord) -> int:
    return sum(len(part) for part in (record.key, record.value) if isinstance(part, bytes))


def _digest(record: SourceRecord) -> str:
    value = record.value if isinstance(record.value, bytes) else b""
    return hashlib.sha256(value).hexdigest()


def reason_for(error: BaseException) -> str:
    """undecodable for codec errors, invalid_value for a broken record rule,
    processing_failed for everything else."""
    if isinstance(error, DecodeError):
        return "undecodable"
    return "invalid_value" if isinstance(error, InvalidValue) else "processing_failed"


def dead_letter_for(record: SourceRecord, *, agent: str, reason: str, error: BaseException,
                    producer: str, attempt: int = 1) -> DeadLetter:
    """The DeadLetter event of a failed record (pure)."""
    return DeadLetter(
        envelope=DeadLetter.envelope_for(event_time=utc_now(), producer=producer),
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        original_key=record.key if isinstance(record.key, bytes | None) else str(record.key).encode(),
        original_value=record.value if isinstance(record.value, bytes | None) else None,
        agent=agent,
        reason=reason,
        error_type=type(error).__name__,
        error_message=str(error)[:MAX_ERROR_MESSAGE],
        attempt=attempt,
    )


class DeadLetters:
    """Sends failed records to system.deadletter and counts them."""

    def __init__(self, codec: AvroCodec, topic: TopicT, metric: Metric) -> None:
        """``topic``: system.deadletter; ``metric``: the counter labelled (agent, reason)."""
        self.topic = topic
        self.metric = metric
        self.counts: Counter[tuple[str, str]] = Counter()
        # A dead letter holds a whole record plus context: allow it more room.
        self.codec = AvroCodec(codec.registry, letter_bytes(codec.max_record_bytes))

    async def send(self, record: SourceRecord, *, agent: str, error: BaseException,
                   reason: str | None = None, attempt: int = 1) -> None:
        """Dead-letter one record (never raises for an encodable record)."""
        reason = reason or reason_for(error)
        letter = dead_letter_for(record, agent=agent, reason=reason, error=error,
                                 producer=f"agent.{agent}", attempt=attempt)
        self.counts[(agent, reason)] += 1
        self.metric.labels(agent, reason).inc()
        log.warning("dead-lettered %s[%s]@%s (%s): %s: %s", record.topic, record.partition,
                    record.offset, agent, letter.error_type, letter.error_message)
        topic = self.topic
        try:
            await topic.send(key=record.topic.encode(), value=self.codec.encode(letter))
        except Exception as failure:  # too large for the broker or the codec: keep the rest
            if letter.original_value is None and letter.original_key is None:
                raise
            kept = dataclasses.replace(letter, original_key=None, original_value=None, error_message=(
                f"{letter.error_message} [original key and value ({_size(record)} bytes, sha256 "
                f"{_digest(record)}) not kept: {type(failure).__name__}]")[:MAX_ERROR_MESSAGE])
            log.warning("dead letter of %s[%s]@%s sent without its bytes: %s", record.topic, record.partition,
                        record.offset, failure)
            await topic.send(key=record.topic.encode(), value=self.codec.encode(kept))

    @asynccontextmanager
    async def guard(self, record: SourceRecord, *, agent: str) -> AsyncIterator[None]:
        """Run the body; on any exception dead-letter ``record`` and carry on."""
        try:
            yield
        except Exception as error:
            await self.send(record, agent=agent, error=error)

    @property
    def total(self) -> int:
        """Records dead-lettered by this worker since it started."""
        return sum(self.counts.values())
