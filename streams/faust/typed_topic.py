"""Faust topics that carry typed Avro records of the catalog.

Faust sees raw bytes (so a bad record can never crash its decoder); agents decode with
the codec inside a dead-letter guard, and sends are type-checked and encoded here.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from faust.types import AppT, TopicT
from prometheus_client import Counter as Metric

from schemas.records import Event
from streams.kafka.catalog import CATALOG, TopicSpec
from streams.kafka.codec import AvroCodec
from streams.settings import Settings
from streams.validation import checked


class TypedTopic:
    """A catalog topic bound to an app: ``.faust`` to consume, ``send`` to produce."""

    def __init__(self, app: AppT, spec: TopicSpec, settings: Settings, codec: AvroCodec, sent: Metric) -> None:
        """``sent``: the counter of events sent, labelled by catalog topic."""
        self.spec = spec
        self.settings = settings
        self.codec = codec
        self.sent = sent
        self.name = settings.topic_prefix + spec.name
        self.faust: TopicT = app.topic(
            self.name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=spec.partitions or settings.partitions,
            retention=spec.retention_ms / 1000 if spec.retention_ms > 0 else None,
        )

    async def send_pending(self, event: Event, key: str | None = None) -> Awaitable[Any]:
        """Type-check, encode and queue; the returned future resolves once the broker
        has the record. WrongRecordType, InvalidValue and EncodeError are raised before
        anything is sent. Times are not bounded here: an agent's output carries the times of
        inputs already checked (a candle closed by the idle timer may end after now)."""
        value = self.encode(event)
        pending = await self.faust.send(key=(key or self.spec.key_of(event)).encode(), value=value)
        self.sent.labels(self.spec.name).inc()
        return pending

    def encode(self, event: Event) -> bytes:
        """The record's bytes once it is checked for this topic (see ``send_pending``)."""
        self.check(event)
        return self.codec.encode(event)

    def check(self, event: Event) -> None:
        """WrongRecordType or InvalidValue unless the record may go to this topic (its times unbounded)."""
        self.spec.check(event)
        checked(event, self.settings.max_future_skew_s, bound_times=False)

    async def send(self, event: Event, key: str | None = None) -> None:
        """Type-check, encode and queue (see ``send_pending``)."""
        await self.send_pending(event, key)


def declare_topics(app: AppT, settings: Settings, codec: AvroCodec, sent: Metric) -> dict[str, TypedTopic]:
    """Every catalog topic, by catalog name."""
    return {spec.name: TypedTopic(app, spec, settings, codec, sent) for spec in CATALOG}
