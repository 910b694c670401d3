"""Reading exact offset ranges of a topic, and finding offsets by record timestamp.

Bounds come from ``streams.kafka.admin.end_offsets`` (the true end on either engine). Offsets
for a time come from ListOffsets by timestamp (``offsets_for_times``) on Apache Kafka, and by
binary search over the records' own timestamps where the engine's answer is unreliable
(Tansu): ``streams.engine`` decides.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.errors import BrokerError
from streams.kafka.admin import end_offsets, resolve_flavor
from streams.settings import Settings


@dataclass(frozen=True)
class Raw:
    """One record as stored: where it is, its key, value and timestamp (ms)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def _consumer(settings: Settings, **extra: object) -> Consumer:
    return Consumer({
        **settings.kafka_client_config(),
        "group.id": f"ticktide-range-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **extra,
    })


def _raw(message: Message) -> Raw:
    return Raw(message.partition() or 0, message.offset() or 0, message.key(), message.value(),
               message.timestamp()[1])


def read_range(settings: Settings, topic: str, starts: list[int], ends: list[int],
               poll_timeout: float = 30.0, prefetch_kb: int | None = None) -> Generator[Raw, None, None]:
    """Every record of ``topic`` with starts[p] <= offset < ends[p] (a start may be
    OFFSET_BEGINNING), each partition in order. ``prefetch_kb`` caps what the client
    fetches ahead per partition (librdkafka's default, 64 MB each, grows a long read's
    memory with the topic's size).

    Ends once every partition reached its end offset, however busy the topic is: a
    partition is done at its end, at the first record past it (a gap at the end) or at the
    end of its log (records before the end gone, e.g. by retention), and then paused.
    BrokerError if a pending partition delivers nothing for ``poll_timeout`` seconds."""
    limits = {} if prefetch_kb is None else {"queued.max.messages.kbytes": prefetch_kb}
    consumer = _consumer(settings, **{"enable.partition.eof": True, **limits})
    pending = {p for p, (s, e) in enumerate(zip(starts, ends, strict=True)) if e > 0 and s < e}
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(pending)])

    def done(partition: int) -> None:
        pending.discard(partition)
        consumer.pause([TopicPartition(topic, partition)])

    last = time.monotonic()
    try:
        while pending:
            batch = consumer.consume(10_000, timeout=0.2)
            if time.monotonic() - last > poll_timeout:
                raise BrokerError(f"{topic}: no records for {poll_timeout:.0f} s before the end "
                                  f"of partitions {sorted(pending)}")
            for message in batch:
                error = message.error()
                partition = message.partition() or 0
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if partition in pending:  # the log ends here; its end is >= ours
                            done(partition)
                            last = time.monotonic()
                        continue
                    if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise BrokerError(f"reading {topic}: {error.str()}")
                    continue
                if partition not in pending:
                    continue
                last = time.monotonic()
                raw = _raw(message)
                if raw.offset >= ends[partition]:
                    done(partition)
                    continue
                yield raw
                last = time.monotonic()  # the caller may have held us (a paced or merged replay)
                if raw.offset >= ends[partition] - 1:
                    done(partition)
    finally:
        consumer.close()


class TimestampSearch:
    """Reads single records by offset, to binary-search a partition by timestamp."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        flavored = resolve_flavor(settings)
        # one record per read: an engine that answers a fetch only when its wait is over (Tansu) cost 0.5 s a probe
        self._consumer = _consumer(settings, **{"fetch.wait.max.ms": flavored.fetch_max_wait_ms})
        self._native = flavored.engine.offsets_for_times

    def timestamp_at(self, partition: int, offset: int, timeout: float = 30.0) -> int:
        """The timestamp (ms) of the record at ``offset`` (or the next existing one)."""
        self._consumer.assign([TopicPartition(self.topic, partition, offset)])
        messages = self._consumer.consume(1, timeout=timeout)
        good = [m for m in messages if m.error() is None]
        if not good:
            raise BrokerError(f"no record at {self.topic}[{partition}]@{offset}")
        return int(good[0].timestamp()[1])

    def first_at_or_after(self, partition: int, start: int, end: int, timestamp_ms: int) -> int:
        """The first offset in [start, end) whose record timestamp is >= ``timestamp_ms``
        (``end`` if none). The binary search assumes timestamps do not decrease within the partition."""
        if self._native:
            return min(max(self.listed_offset(partition, timestamp_ms), start), end)
        low, high = start, end
        while low < high:
            middle = (low + high) // 2
            if self.timestamp_at(partition, middle) < timestamp_ms:
                low = middle + 1
            else:
                high = middle
        return low

    def listed_offset(self, partition: int, timestamp_ms: int, timeout: float = 30.0) -> int:
        """The broker's first offset with a timestamp >= ``timestamp_ms`` (ListOffsets by
        timestamp); the partition's end when there is none."""
        tp = TopicPartition(self.topic, partition, timestamp_ms)
        try:
            found = self._consumer.offsets_for_times([tp], timeout=timeout)[0]
        except KafkaException as exc:
            raise BrokerError(f"no offset for time {timestamp_ms} in {self.topic}[{partition}]: "
                              f"{exc.args[0].str()}") from None
        if found.offset >= 0:
            return int(found.offset)
        return int(self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=timeout)[1])

    def close(self) -> None:
        """Release the consumer."""
        self._consumer.close()


def read_partition(settings: Settings, topic: str, partition: int, start: int, end: int) -> Iterator[Raw]:
    """Every record of one partition of ``topic`` with start <= offset < end (``read_range``)."""
    starts, ends = [0] * (partition + 1), [0] * (partition + 1)
    starts[partition], ends[partition] = start, end
    return read_range(settings, topic, starts, ends)


def from_beginning(partitions: int) -> list[int]:
    """Start offsets meaning "the oldest record still stored" in each partition."""
    return [OFFSET_BEGINNING] * partitions


def read_all(settings: Settings, topic: str) -> Iterator[Raw]:
    """Every record stored in ``topic`` now (up to the fetched high watermarks)."""
    ends = list(end_offsets(settings, topic))
    return read_range(settings, topic, from_beginning(len(ends)), ends)
