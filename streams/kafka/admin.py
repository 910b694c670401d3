"""Topic administration and true end offsets, with confluent-kafka's AdminClient.

On Apache Kafka end offsets come from ListOffsets "latest"; on the embedded broker (Tansu),
which answers it with the base offset of the last batch, from the high watermark of a
real fetch (``streams.engine`` decides which).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined,unused-ignore]

from streams.errors import BrokerError
from streams.kafka.catalog import CATALOG, TopicSpec
from streams.settings import Settings

EMBEDDED_CLUSTER_ID = "ticktide-embedded"
"""The cluster id the embedded broker (streams.devstack.broker) runs with; ``is_embedded`` looks for it."""


@dataclass(frozen=True)
class TopicInfo:
    """A topic as the broker sees it."""

    name: str
    partitions: int
    end_offsets: tuple[int, ...]

    @property
    def records(self) -> int:
        """Records appended so far (sum of end offsets; retention not subtracted)."""
        return sum(self.end_offsets)


METADATA_TIMEOUT_S = 7.0
"""How long a command waits for the broker's first answer: an unreachable broker is
reported within 10 s of starting a command, start-up included."""


def _metadata(admin: AdminClient, settings: Settings, timeout: float = METADATA_TIMEOUT_S) -> Any:
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(
            f"cannot reach the broker at {settings.broker} ({exc.args[0].str()}); "
            "start one with `ticktide broker` or `make run`, or pass --broker HOST:PORT"
        ) from None


def admin_client(settings: Settings) -> AdminClient:
    """An AdminClient for the configured cluster; BrokerError if it cannot be reached."""
    admin = AdminClient(settings.kafka_client_config())
    _metadata(admin, settings)
    return admin


def cluster_id(settings: Settings) -> str:
    """The cluster id; BrokerError with a hint when the broker cannot be reached."""
    return str(_metadata(AdminClient(settings.kafka_client_config()), settings).cluster_id or "")


def is_embedded(settings: Settings) -> bool:
    """True when the broker is the embedded Tansu (configured or detected)."""
    if settings.broker_flavor != "auto":
        return settings.broker_flavor == "tansu"
    found = cluster_id(settings)
    return found == EMBEDDED_CLUSTER_ID or found.startswith("tansu")


def resolve_flavor(settings: Settings) -> Settings:
    """The settings with ``broker_flavor`` resolved (``auto`` asks the cluster), so that
    ``settings.engine`` is the engine's real traits."""
    if settings.broker_flavor != "auto":
        return settings
    return settings.model_copy(update={"broker_flavor": "tansu" if is_embedded(settings) else "kafka"})


def create_topics(settings: Settings, specs: tuple[TopicSpec, ...] = CATALOG) -> dict[str, str]:
    """Create every catalog topic that does not exist yet: name -> created|exists."""
    admin = admin_client(settings)
    new = [
        NewTopic(settings.topic_prefix + spec.name, spec.partitions or settings.partitions,
                 settings.replication_factor, config=spec.config(settings.max_record_bytes))
        for spec in specs
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(new, operation_timeout=15).items():
        try:
            future.result()
            outcome[name] = "created"
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"cannot create topic {name}: {error.str()}") from None
            outcome[name] = "exists"
    _await_leaders(admin, [name for name, how in outcome.items() if how == "created"])
    return outcome


def _await_leaders(admin: AdminClient, names: list[str], timeout: float = 15.0) -> None:
    """Wait (up to ``timeout``) until the metadata has every partition of the topics just
    created, each with a leader: Apache Kafka answers CreateTopics before its brokers know
    the new topics, and a replay that creates an app's topics writes to them next. Past the
    timeout, what comes next reports the topic as it finds it."""
    deadline = time.monotonic() + timeout
    waiting = set(names)
    while waiting and time.monotonic() < deadline:
        try:
            topics = admin.list_topics(timeout=5).topics
        except KafkaException:
            continue  # no answer: ask again until the deadline
        waiting = {name for name in waiting if name not in topics or topics[name].error is not None
                   or not topics[name].partitions or any(p.leader < 0 for p in topics[name].partitions.values())}
        if waiting:
            time.sleep(0.1)


def list_topics(settings: Settings) -> dict[str, int]:
    """Every topic on the broker (internal ones included) -> partition count."""
    metadata = _metadata(AdminClient(settings.kafka_client_config()), settings)
    return {name: len(t.partitions) for name, t in sorted(metadata.topics.items())}


def partition_count(settings: Settings, topic: str) -> int:
    """How many partitions ``topic`` has (the settings' count if it cannot be asked)."""
    try:
        return list_topics(settings).get(topic) or settings.partitions
    except BrokerError:
        return settings.partitions


def _probe_consumer(settings: Settings, **extra: Any) -> Consumer:
    return Consumer({
        **settings.kafka_client_config(),
        "group.id": f"ticktide-probe-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        **extra,
    })


def end_offsets(settings: Settings, topic: str, timeout: float = 10.0) -> tuple[int, ...]:
    """True end offset of each partition of ``topic`` (see ``end_offsets_of``)."""
    return end_offsets_of(settings, [topic], timeout)[topic]


def end_offsets_of(settings: Settings, topics: Iterable[str], timeout: float = 10.0) -> dict[str, tuple[int, ...]]:
    """True end offset of each partition of each topic, asked in one go: ListOffsets
    "latest" where the engine answers it right (Apache Kafka), else the high watermark of
    a real fetch (one fetch round for every partition)."""
    wanted = list(dict.fromkeys(topics))
    known = list_topics(settings)
    for topic in wanted:
        if topic not in known:
            raise BrokerError(f"topic {topic} does not exist; run `ticktide topics create`")
    partitions = [TopicPartition(topic, p) for topic in wanted for p in range(known[topic])]
    listed = resolve_flavor(settings).engine.list_offsets_is_end
    consumer = _probe_consumer(settings, **({} if listed else {"fetch.wait.max.ms": PROBE_FETCH_WAIT_MS}))
    try:
        ends = _listed_ends(consumer, partitions, timeout) if listed else _fetched_ends(consumer, partitions, timeout)
    except KafkaException as exc:
        raise BrokerError(f"no end offsets for {', '.join(wanted)}: {exc.args[0].str()}") from None
    finally:
        consumer.close()
    return {topic: tuple(ends[topic, p] for p in range(known[topic])) for topic in wanted}


PROBE_FETCH_WAIT_MS = 10
"""The embedded broker answers a fetch only when its max wait is over: keep the probe's short."""


LEADERSHIP_IN_FLUX = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.OFFSET_NOT_AVAILABLE,
})
"""Answers that pass once the partition's leader is settled: a topic created a moment ago
(Apache Kafka answers CreateTopics before its brokers lead the new partitions) or a leader
that moved (a broker down). Asked again until the deadline."""


def _listed_ends(consumer: Consumer, partitions: list[TopicPartition], timeout: float) -> dict[tuple[str, int], int]:
    """End offsets from ListOffsets "latest" (the high watermark: what consumers can read)."""
    deadline = time.monotonic() + timeout
    ends: dict[tuple[str, int], int] = {}
    for tp in partitions:
        while (tp.topic, tp.partition) not in ends:
            try:
                left = max(0.5, deadline - time.monotonic())
                ends[tp.topic, tp.partition] = consumer.get_watermark_offsets(tp, timeout=left)[1]
            except KafkaException as exc:
                if exc.args[0].code() not in LEADERSHIP_IN_FLUX or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    return ends


def _fetched_ends(consumer: Consumer, partitions: list[TopicPartition], timeout: float) -> dict[tuple[str, int], int]:
    """End offsets from the high watermark of a real fetch: the first fetch answer for a
    partition, with records or at its end, so a topic written to all the time has an end
    too (a fetch of a busy partition never comes back empty)."""
    reported = _listed_ends(consumer, partitions, timeout)
    consumer.assign([TopicPartition(tp.topic, tp.partition, max(reported[tp.topic, tp.partition], 0))
                     for tp in partitions])
    ends: dict[tuple[str, int], int] = {}
    deadline = time.monotonic() + timeout
    while len(ends) < len(partitions) and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        error = message.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            continue
        topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
        if (topic, partition) not in ends:
            cached = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)[1]
            ends[topic, partition] = max(cached, offset if error is not None else offset + 1)
            consumer.pause([TopicPartition(topic, partition)])
    pending = [f"{tp.topic}[{tp.partition}]" for tp in partitions if (tp.topic, tp.partition) not in ends]
    if pending:
        raise BrokerError(f"no end offset for {', '.join(pending)}")
    return ends


def describe(settings: Settings, topic: str) -> TopicInfo:
    """Partitions and true end offsets of a topic."""
    ends = end_offsets(settings, topic)
    return TopicInfo(topic, len(ends), ends)
