"""``RowWriter``: many rows into a Faust table at once, at librdkafka's price.

Faust writes a table row through its Python producer (aiokafka): a JSON encode for the
store, another for the changelog and ~30 us of producer per row. The candle fold writes
thousands of rows a second (one per changed symbol and per final candle), so it writes
them here: each row encoded once with the table's own serializers, put in the table's
local store (RocksDB or memory) in the source partition, and sent to the table's
changelog partition through librdkafka (~2 us a record). The bytes are the ones Faust
would write, so recovery, standbys and reads see no difference.

``read`` takes a row from the store of the partition it was written in (one lookup).
``flush`` waits for the broker and then records the changelog offsets as the store's
persisted offsets (what Faust's own write path does per row), so a restarted worker
recovers from there. Only the table's owner writes it this way: a table mixing these
writes with Faust's own would lose the order of its changelog.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from faust.exceptions import DecodeError
from faust.stores.base import SerializedStore
from faust.types import TP, TableT

from streams.errors import BrokerError
from streams.faust.patches.private_api import partition_scope, require_tested_faust
from streams.settings import Settings

PRODUCER_CONFIG: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "compression.type": "lz4",  # rows are JSON: lz4 takes most of it away, in C
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
}


Encode = Callable[[Any], bytes]

_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def json_encoder(fallback: Encode) -> Encode:
    """What Faust's ``json`` serializer writes (stdlib json, compact, ASCII-escaped) without
    its serializer registry, ~0.5 us a row instead of ~2.2; ``fallback`` (the store's own
    encoder) for a value that is not JSON-native (Faust's encoder knows more types)."""

    def encode(value: Any) -> bytes:
        try:
            return _compact_json(value).encode()
        except TypeError:
            return fallback(value)

    return encode


def store_encoders(store: Any, key: Any, value: Any) -> tuple[Encode, Encode]:
    """The store's key and value encoders: ``json_encoder`` for each that writes plain JSON
    for a sample row (the table's serializer is json), else the store's own."""
    encoders = []
    for own, sample in ((store._encode_key, key), (store._encode_value, value)):
        try:
            same = _compact_json(sample).encode() == own(sample)
        except TypeError:  # not JSON-native: no sample to compare
            same = False
        encoders.append(json_encoder(own) if same else own)
    return encoders[0], encoders[1]


class RowWriter:
    """Writes rows of one or more Faust tables; rows of a source partition go to the same
    partition of each table's changelog and store."""

    def __init__(self, settings: Settings, source_topic: str) -> None:
        require_tested_faust("streams.faust.table_rows")
        self.source_topic = source_topic  # the topic the tables are co-partitioned with
        self._producer = Producer({**settings.kafka_client_config(), **PRODUCER_CONFIG})
        self._tables: dict[str, weakref.ref[TableT[Any, Any]]] = {}  # changelog topic -> table
        self._encoders: dict[str, tuple[Encode, Encode]] = {}  # changelog topic -> key, value encoders
        self._persisted: dict[tuple[str, int], int] = {}  # delivered, not yet recorded in the store
        self._failures: list[str] = []

    def write(self, table: TableT[Any, Any], partition: int, rows: Mapping[Any, Any]) -> None:
        """Put ``rows`` in ``table``'s store and queue them for its changelog, in ``partition``."""
        if not rows:
            return
        store: Any = table.data  # a faust.stores Store (TableT types it as a plain mapping)
        topic = table.changelog_topic.get_topic_name()
        self._tables.setdefault(topic, weakref.ref(table))
        if topic not in self._encoders:
            self._encoders[topic] = store_encoders(store, *next(iter(rows.items())))
        encode_key, encode_value = self._encoders[topic]
        serialized = isinstance(store, SerializedStore)
        produce, poll = self._producer.produce, self._producer.poll
        with partition_scope(self.source_topic, partition):
            for key, value in rows.items():
                key_bytes, value_bytes = encode_key(key), encode_value(value)
                if serialized:
                    store._set(key_bytes, value_bytes)
                else:
                    store[key] = value
                while True:
                    try:
                        produce(topic, key=key_bytes, value=value_bytes, partition=partition,
                                on_delivery=self._on_delivery)
                        break
                    except BufferError:  # local queue full: let deliveries drain
                        poll(0.1)
        poll(0)

    def read(self, table: TableT[Any, Any], partition: int, key: Any) -> Any:
        """A row of ``table`` from the store of ``partition``, where ``write`` puts it (None if
        it has none): one lookup. Faust's own read, not knowing the partition, asks every
        partition's store (twice: whether it holds the key, then for its value). A value that
        does not decode is None too: whoever can write to the changelog can put anything in
        the store, and the writer's next row replaces it (raised, it failed every write after)."""
        store: Any = table.data
        if not isinstance(store, SerializedStore):
            return store.get(key)
        with partition_scope(self.source_topic, partition):
            value = store._get(store._encode_key(key))
        try:
            return None if value is None else store._decode_value(value)
        except DecodeError:
            return None

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return
        where = (topic, partition)
        if offset > self._persisted.get(where, -1):
            self._persisted[where] = offset

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the broker has every row (BrokerError if one was not delivered), then
        record how far each changelog partition is in its store. Blocking: run it off the loop."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise BrokerError(f"{remaining} table rows not delivered within {timeout:.0f} s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise BrokerError(f"{len(failures)} table rows failed: {failures[0]}")

    def record_persisted(self) -> None:
        """Record the delivered changelog offsets as the stores' persisted offsets (on the
        event loop, after ``flush``)."""
        persisted, self._persisted = self._persisted, {}
        for (topic, partition), offset in persisted.items():
            table = self._tables[topic]()
            if table is not None:
                store: Any = table.data
                store.set_persisted_offset(TP(topic, partition), offset)
