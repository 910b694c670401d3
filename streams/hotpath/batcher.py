"""Re-batch market.trades for the candle agent: the hot path's answer to Faust's per-event cost.

market.trades stays the contract (one Trade per record, what users produce). Each worker
runs one ``TradeBatcher``: a plain aiokafka consumer in its own group
(``<app_id>.trade-batcher``) that reads market.trades and forwards each run of fetched
records of a partition, bytes untouched, as one TradeBatch record to the same partition of
the app's internal topic ``<app_id>-market.trade_batches`` (internal like Faust's
changelogs: each app instance re-batches for itself). The candle agent (a Faust agent)
then pays Faust's per-event price once per batch instead of once per trade.

Why this is exact:
* A batch is committed (its source offsets) only after the broker has it, so a crash or a
  rebalance re-sends, it never skips.
* One partition is forwarded by one batcher at a time, in offset order; a new owner starts
  at the committed offset, which is never past a record that is not in the batch topic.
  So, per partition, the batch topic holds every source offset, in order, possibly more
  than once: the candle fold skips what it has already applied (rule 4).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from faust.exceptions import ProducerSendError
from faust.types import AppT, TopicT
from mode import Service

from schemas.records import TradeBatch
from streams.errors import BrokerError, DecodeError, EncodeError, RecordTooLarge
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.ops.worker_status import WorkerStatus
from streams.resilience.deadletter import DeadLetters, RawRecord
from streams.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "market.trades"
BATCHES = "market.trade_batches"
"""The internal topic's name after ``<app_id>-``."""
PRODUCER = "streams.batcher"
COMPONENT = AGENT = "trade_batcher"
RETRY_BACKOFF_S = 0.5
MAX_RETRY_BACKOFF_S = 8.0
MAX_BATCH_BYTES = 768 * 1024
"""Keep a batch well under Kafka's default 1 MiB message limit."""


def declare_batch_topic(app: AppT, settings: Settings) -> TopicT:
    """The app's internal topic of trade batches (Faust creates it); declared once, by the
    app factory, as ``app.trade_batches``."""
    return app.topic(f"{settings.app_id}-{BATCHES}", key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=settings.partitions, internal=True,
                     retention=24 * 3600.0)


def record_size(record: ConsumerRecord[bytes, bytes]) -> int:
    """Bytes a record takes in a batch (key, value and a little framing)."""
    return _framed_size(record.key, record.value)


def unbatchable(key: bytes | None, value: bytes | None) -> bool:
    """A market.trades record the batcher dead-letters itself: a tombstone, or too large
    for a batch (no trade is)."""
    return value is None or _framed_size(key, value) > MAX_BATCH_BYTES


def _framed_size(key: bytes | None, value: bytes | None) -> int:
    return len(value or b"") + len(key or b"") + 32


def split_runs(records: Sequence[ConsumerRecord[bytes, bytes]], max_records: int,
               max_bytes: int = MAX_BATCH_BYTES) -> list[Sequence[ConsumerRecord[bytes, bytes]]]:
    """Cut one partition's fetched records into consecutive runs within both limits."""
    runs: list[Sequence[ConsumerRecord[bytes, bytes]]] = []
    start, size = 0, 0
    for index, record in enumerate(records):
        size_of = record_size(record)
        if index > start and (index - start >= max_records or size + size_of > max_bytes):
            runs.append(records[start:index])
            start, size = index, 0
        size += size_of
    if start < len(records):
        runs.append(records[start:])
    return runs


def trade_batch(partition: int, run: Sequence[ConsumerRecord[bytes, bytes]],
                fetched_at: datetime, follows_offset: int) -> TradeBatch:
    """The TradeBatch event of one run of records (``follows_offset``: the offset before it).
    Its event time is when it was fetched: the records' own timestamps are untrusted input,
    checked by the candle agent record by record."""
    last = run[-1]
    return TradeBatch(
        envelope=TradeBatch.envelope_for(
            event_time=fetched_at, producer=PRODUCER,
            event_id=f"{SOURCE}/{partition}/{run[0].offset}-{last.offset}",
        ),
        source_topic=SOURCE,
        source_partition=partition,
        fetched_at=fetched_at,
        follows_offset=follows_offset,
        offsets=[r.offset for r in run],
        timestamps_ms=[r.timestamp for r in run],
        keys=[r.key for r in run],
        values=[r.value for r in run],
    )


class _CommitBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Let the batch in flight finish (sent and committed) before partitions move, and
    forget where revoked partitions were: a new assignment starts from the commit."""

    def __init__(self, lock: asyncio.Lock, forwarded_through: dict[int, int]) -> None:
        self.lock = lock
        self.forwarded_through = forwarded_through

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            for tp in revoked:
                self.forwarded_through.pop(tp.partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("trade batcher assigned %s", sorted(tp.partition for tp in assigned))


class TradeBatcher(Service):
    """Forwards market.trades to the app's trade-batch topic, one record per fetched run."""

    def __init__(self, settings: Settings, codec: AvroCodec, deadletters: DeadLetters, status: WorkerStatus,
                 batches: TopicT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.codec = codec
        self.deadletters = deadletters
        self.status = status
        self.batches = batches
        # librdkafka, uncompressed: every trade passes here, a record costs ~2 us (Faust's
        # producer: ~30, and lz4 on the bulk of the worker's bytes).
        self.producer = EventProducer(settings, codec, **{"linger.ms": 1, "compression.type": "none"})
        self.forwarded = 0
        self._in_flight = asyncio.Lock()
        self._forwarded_through: dict[int, int] = {}  # partition -> last source offset sent
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The source consumer (exists once the service has started)."""
        assert self._consumer is not None, "the batcher has not started"
        return self._consumer

    async def on_start(self) -> None:
        settings = self.settings
        await self.batches.maybe_declare()  # it is sent to by name: it must exist with its partitions
        self._consumer = AIOKafkaConsumer(  # needs the running loop: made here, not in __init__
            **settings.aiokafka_client_config(),
            group_id=f"{settings.app_id}.trade-batcher",
            client_id=f"{settings.worker_id}.trade-batcher",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(settings.session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        listener = _CommitBeforeRevoke(self._in_flight, self._forwarded_through)
        self.consumer.subscribe([settings.topic_prefix + SOURCE], listener=listener)
        await self.consumer.start()

    def ends(self) -> dict[int, int]:
        """The end offset of each market.trades partition this batcher forwards, as its last
        fetch saw it (the high watermark of a real fetch: right on every broker)."""
        if self._consumer is None:
            return {}
        found = {tp.partition: self._consumer.highwater(tp) for tp in self._consumer.assignment()}
        return {partition: end for partition, end in found.items() if end is not None}

    def report(self) -> dict[str, Any]:
        """What /health shows: the market.trades partitions this worker forwards, and how many records."""
        assigned = sorted(tp.partition for tp in self._consumer.assignment()) if self._consumer else []
        return {"assigned_partitions": [f"{SOURCE}[{p}]" for p in assigned], "forwarded": self.forwarded}

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    @Service.task
    async def _forward(self) -> None:
        try:
            await self._forward_forever()
        except Exception as error:  # a bug: say so (/ready 503, FAILED), do not hide it
            self.status.fail(COMPONENT, error)

    async def _forward_forever(self) -> None:
        settings = self.settings
        wait_ms = int(settings.batch_wait_s * 1000)
        backoff = RETRY_BACKOFF_S
        while not self.should_stop:
            try:
                fetched = await self.consumer.getmany(timeout_ms=wait_ms)
                if fetched:
                    async with self._in_flight:
                        try:
                            await self._send_and_commit(fetched, settings.batch_max)
                        except Exception:
                            await self._rewind(list(fetched))  # nothing committed: read them again
                            raise
                backoff = RETRY_BACKOFF_S
            except (TimeoutError, KafkaError, ProducerSendError, BrokerError, OSError) as error:
                log.warning("trade batcher could not forward (%s: %s); retrying in %.1f s",
                            type(error).__name__, error, backoff)
                self.status.error(COMPONENT)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RETRY_BACKOFF_S)

    async def _rewind(self, partitions: list[TopicPartition]) -> None:
        """Go back to the last commit of ``partitions``: their records are read again."""
        assigned = self.consumer.assignment()
        for tp in partitions:
            self._forwarded_through.pop(tp.partition, None)
            if tp in assigned:
                committed = await self.consumer.committed(tp)
                if committed is None:
                    await self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)

    async def _dead_letter_unbatchable(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
                                       ) -> list[ConsumerRecord[bytes, bytes]]:
        """Dead-letter here what cannot or need not travel in a batch (a record too large,
        a tombstone); in the batch it stays as a marker (no key, no value) so the batch still
        covers its offset (the candle agent skips markers: they are dead-lettered already)."""
        kept = []
        for record in records:
            if unbatchable(record.key, record.value):
                error = (DecodeError("a tombstone (no value) is not a trade") if record.value is None else
                         RecordTooLarge(f"record of {record_size(record)} bytes is over the "
                                        f"{MAX_BATCH_BYTES}-byte batch limit"))
                await self.deadletters.send(
                    RawRecord(record.topic, tp.partition, record.offset, record.key, record.value),
                    agent=AGENT, error=error)
                record = replace(record, key=None, value=None)
            kept.append(record)
        return kept

    async def _follows(self, tp: TopicPartition) -> int:
        """The source offset the next run of ``tp`` follows."""
        last = self._forwarded_through.get(tp.partition)
        if last is None:  # newly assigned: the consumer started at the committed offset
            committed = await self.consumer.committed(tp)
            last = committed - 1 if committed is not None else -1
        return last

    async def _send_and_commit(self, fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
                               max_records: int) -> None:
        fetched_at = datetime.now(UTC)
        topic = self.batches.get_topic_name()
        assigned = self.consumer.assignment()
        fetched = {tp: records for tp, records in fetched.items() if tp in assigned}  # not stale ones
        for tp, records in fetched.items():
            follows = await self._follows(tp)
            for run in split_runs(await self._dead_letter_unbatchable(tp, records), max_records):
                try:
                    value = self.codec.encode(trade_batch(tp.partition, run, fetched_at, follows))
                except EncodeError as error:  # not expected: cost these records, not the partition
                    for record in run:
                        await self.deadletters.send(
                            RawRecord(record.topic, tp.partition, record.offset, record.key, record.value),
                            agent=AGENT, error=error)
                    continue
                self.producer.send_raw(topic, str(tp.partition).encode(), value, partition=tp.partition)
                follows = self._forwarded_through[tp.partition] = run[-1].offset
        await asyncio.to_thread(self.producer.flush)  # BrokerError if any batch was not delivered
        self.forwarded += sum(len(records) for records in fetched.values())
        if not fetched:
            return
        try:
            await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in fetched.items()})
        except (CommitFailedError, IllegalStateError, KafkaError) as error:
            # The partitions moved meanwhile: their new owner re-sends from the last
            # commit, and the fold skips what it has already applied.
            log.warning("trade batcher commit failed (%s); the new owner re-sends", error)
