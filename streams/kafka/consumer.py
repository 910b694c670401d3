"""Read a topic without joining a consumer group: what `ticktide consume` uses.

Records are decoded as they come; an undecodable one is yielded as ``Undecodable`` with
its reason, never skipped in silence.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.records import Event
from streams.errors import BrokerError, DecodeError
from streams.kafka.admin import end_offsets
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import registry_for
from streams.settings import Settings


@dataclass(frozen=True)
class Consumed:
    """A decoded record and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    event: Event


@dataclass(frozen=True)
class Undecodable:
    """A record that did not decode, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


CATCH_UP_TIMEOUT_S = 30.0
"""How long a read waits for a record or a partition's end until every partition has reached
its end once; only then does the idle timeout apply. Before, a loaded broker can take over
a second to answer (connections, offset queries, and a fetch of an empty partition that
waits ``fetch.wait.max.ms`` while the others queue behind it): that is not an idle topic."""
FETCH_WAIT_MS = 100
"""A one-shot reader's fetch wait: an empty partition holds the fetch of the others no longer."""


def read_topic(settings: Settings, topic: str, *, from_beginning: bool = True,
               limit: int | None = None, idle_timeout: float = 5.0, until_end: bool = False,
               codec: AvroCodec | None = None) -> Iterator[Consumed | Undecodable]:
    """Records of every partition of ``topic``; stops after ``limit`` records, after
    ``idle_timeout`` seconds without a record once every partition has been read to its end,
    or (``until_end``) once every partition has been read up to its end offset at the start
    (what was there when asked, like kcat's ``-e``)."""
    codec = codec or AvroCodec(registry_for(settings),
                               settings.max_record_bytes)
    ends = end_offsets(settings, topic)  # also checks that the topic exists
    consumer = Consumer({
        **settings.kafka_client_config(),
        "group.id": f"ticktide-consume-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "fetch.wait.max.ms": FETCH_WAIT_MS,
    })
    starts = [OFFSET_BEGINNING] * len(ends) if from_beginning else list(ends)
    consumer.assign([TopicPartition(topic, p, o) for p, o in enumerate(starts)])
    count = 0
    last, caught_up = time.monotonic(), set[int]()  # partitions that have reached their end once
    unread = {p for p, (start, end) in enumerate(zip(starts, ends, strict=True)) if end > max(start, 0)}
    try:
        while (limit is None or count < limit) and (unread or not until_end):
            message = consumer.poll(0.2)
            if message is None:
                patience = idle_timeout if len(caught_up) == len(ends) else CATCH_UP_TIMEOUT_S
                if time.monotonic() - last > patience:
                    return
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # offset: the partition's end now
                    last = time.monotonic()
                    caught_up.add(partition)
                    if offset >= ends[partition]:
                        unread.discard(partition)
                elif error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise BrokerError(f"consuming {topic}: {error.str()}")
                continue
            last = time.monotonic()
            count += 1
            if offset + 1 >= ends[partition]:
                unread.discard(partition)
            key, value = message.key(), message.value()
            try:
                yield Consumed(topic, partition, offset, key, codec.decode(value))
            except DecodeError as exc:
                yield Undecodable(topic, partition, offset, key, value, f"{type(exc).__name__}: {exc}")
    finally:
        consumer.close()
