"""Produce typed events from your own code: ``EventProducer``.

confluent-kafka underneath, idempotent, acks=all, lz4-compressed. Each event is checked
against its topic in the catalog (a wrong type is refused before anything is sent) and
encoded as Confluent-framed Avro; the key is the topic's key field (e.g. the symbol), so
one symbol's events stay in order. Delivery failures are collected and raised on
``flush``: nothing is lost silently.

    with EventProducer(load_settings()) as producer:
        producer.send("market.trades", trade)
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas.records import Event
from streams.errors import BrokerError
from streams.kafka.catalog import topic as catalog_topic
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import registry_for
from streams.settings import Settings
from streams.validation import checked

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    # Java-compatible key hashing, as aiokafka and Faust use: a key lands in the same
    # partition whoever produces it, which co-partitioned tables rely on.
    "partitioner": "murmur2_random",
    "linger.ms": 20,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 200_000,
}


class EventProducer:
    """Sends typed events to catalog topics."""

    def __init__(self, settings: Settings, codec: AvroCodec | None = None,
                 **config: Any) -> None:
        self.codec = codec or AvroCodec(registry_for(settings),
                                        settings.max_record_bytes)
        # one delivery callback for every record (set per record, it costs each produce a
        # reference librdkafka keeps: a third of the call on the hot path)
        self._producer = Producer({**settings.kafka_client_config(), **PRODUCER_DEFAULTS,
                                   "on_delivery": self._on_delivery, **config})
        self.max_future_skew_s = settings.max_future_skew_s
        self.delivered = 0
        self.failures: list[str] = []

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failures.append(f"{message.topic()}: {error.str()}")

    def send(self, topic: str, event: Event, key: str | None = None) -> None:
        """Queue one event; raises WrongRecordType, InvalidValue (a broken record rule,
        domain/rules/validity.py) or EncodeError before sending anything."""
        spec = catalog_topic(topic)
        spec.check(event)
        checked(event, self.max_future_skew_s)
        self.send_raw(topic, (key or spec.key_of(event)).encode(), self.codec.encode(event))

    def send_raw(self, topic: str, key: bytes | None, value: bytes | None,
                 partition: int | None = None) -> None:
        """Queue already-encoded bytes (dead letters, replays); to ``partition`` if given,
        else to the key's."""
        where: dict[str, Any] = {} if partition is None else {"partition": partition}
        self._produce(topic, key, value, where)
        self._producer.poll(0)

    def send_raw_many(self, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]) -> int:
        """Queue already-encoded (key, value) records to their keys' partitions, serving
        delivery reports once for all of them (the hot path's outputs); how many."""
        count = 0
        for key, value in records:
            self._produce(topic, key, value, {})
            count += 1
        self._producer.poll(0)
        return count

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, where: dict[str, Any]) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, **where)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.1)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every queued event; raises BrokerError if any was not delivered."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise BrokerError(f"{remaining} events not delivered within {timeout:.0f} s")
        if self.failures:
            failures, self.failures = self.failures, []
            raise BrokerError(f"{len(failures)} events failed: {failures[0]}")
        return self.delivered

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.flush()
        else:
            self._producer.flush(5)
