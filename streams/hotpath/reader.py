"""``TradeReader``: the candle fold reads market.trades itself, for the partitions Faust gives it.

A Faust agent on market.trades pays Faust's per-event machinery for every trade (several
times the fold's own cost). The reader instead fetches market.trades with one plain
aiokafka consumer and hands each fetched run of a partition to the candle driver as it is:
one hop from the producer to the fold, each trade's bytes read once.

Who folds which partition is still Faust's decision, so the candle tables stay where their
partitions are: Faust assigns the partitions of the app's internal topic
``<app_id>-market.trades-owners`` (co-partitioned with market.trades and the candle tables;
nothing is sent to it), and once Faust has recovered the tables of an assignment
(``follow``), the reader reads the same market.trades partitions, each from the offset after
the candle table's progress row. The progress lives with the rows, as a Kafka Streams
checkpoint does, so there is no consumer group and nothing to commit. Partitions revoked
are dropped at once (``release``), and a run fetched before an assignment changed is never
folded.

On a broker that answers a fetch only when its wait is over (the embedded one), the fetch
wait is short (10 ms) so that a trade is not held back; a worker with nothing to read would
then ask a hundred times a second. Once its partitions have been quiet for a second, the
reader pauses them between fetches for the agents' fetch wait (100 ms): an idle worker asks
about ten times a second, and only the first trade after a quiet second can wait that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faust.types import AppT, TopicT
from mode import Service

from streams.hotpath.ports import Run
from streams.ops.worker_status import WorkerStatus
from streams.settings import Settings

log = logging.getLogger(__name__)

SOURCE = "market.trades"
OWNERS = "market.trades-owners"
"""The internal topic's name after ``<app_id>-``."""
COMPONENT = "trade_reader"
RETRY_BACKOFF_S = 0.5
MAX_RETRY_BACKOFF_S = 8.0

FETCH_HANDOFF_YIELDS = 3
"""Loop turns for the fetcher to wake, build the next request and write it."""
QUIET_AFTER_S = 1.0
"""Without a record for this long, the reader dozes between fetches (see ``_doze``)."""

OnRun = Callable[[Run], Awaitable[None]]


def declare_owner_topic(app: AppT, settings: Settings) -> TopicT:
    """The app's internal topic whose partitions say which market.trades partitions a worker
    folds (Faust creates it); declared once, by the composition root."""
    return app.topic(f"{settings.app_id}-{OWNERS}", key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=settings.partitions, internal=True)


def run_of(partition: int, records: list[ConsumerRecord[bytes, bytes]]) -> Run:
    """The driver's run of consecutive fetched records of one partition."""
    return Run(partition, records[0].offset - 1, [r.offset for r in records], [r.timestamp for r in records],
               [r.key for r in records], [r.value for r in records])


class TradeReader(Service):
    """Reads the market.trades partitions this worker owns and hands each run to ``on_run``."""

    def __init__(self, settings: Settings, status: WorkerStatus, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.status = status
        self.topic = settings.topic_prefix + SOURCE
        self.on_run: OnRun | None = None  # set by the candle agent
        self.read = 0
        self._owned: frozenset[int] = frozenset()  # folded now
        self._wanted: dict[int, int] = {}  # partition -> offset to read from, once applied
        self._next: dict[int, int] = {}  # partition -> the next offset to fold
        self._assignment_changed = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        engine = settings.engine
        self._doze_s = 0.0 if engine.fetch_answers_early else engine.agent_fetch_max_wait_ms / 1000

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The market.trades consumer (exists once the service has started)."""
        assert self._consumer is not None, "the reader has not started"
        return self._consumer

    async def on_start(self) -> None:
        settings = self.settings
        self._consumer = AIOKafkaConsumer(  # needs the running loop: made here, not in __init__
            **settings.aiokafka_client_config(),
            group_id=None,  # Faust decides the partitions; progress is in the candle table
            client_id=f"{settings.worker_id}.trade-reader",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def release(self) -> None:
        """Stop folding every partition at once (Faust is moving them)."""
        self.follow({})

    def follow(self, starts: dict[int, int]) -> None:
        """Read these market.trades partitions, each from its given offset (the reader's loop
        makes the change, between fetches)."""
        self._wanted = dict(starts)
        self._owned = frozenset()  # nothing more is folded under the old assignment
        self._assignment_changed.set()

    def _apply_assignment(self) -> None:
        self._assignment_changed.clear()
        wanted = self._wanted
        self.consumer.unsubscribe()
        if wanted:
            tps = {partition: TopicPartition(self.topic, partition) for partition in wanted}
            self.consumer.assign(list(tps.values()))
            for partition, offset in wanted.items():
                self.consumer.seek(tps[partition], offset)
            log.info("trade reader follows %s", {f"{SOURCE}[{p}]": o for p, o in sorted(wanted.items())})
        self._next = dict(wanted)
        self._owned = frozenset(wanted)

    def ends(self) -> dict[int, int]:
        """The end offset of each market.trades partition read here, as its last fetch saw it
        (the high watermark of a real fetch: right on every broker)."""
        if self._consumer is None:
            return {}
        found = {p: self._consumer.highwater(TopicPartition(self.topic, p)) for p in self._owned}
        return {partition: end for partition, end in found.items() if end is not None}

    def assigned(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs read here."""
        return [(self.topic, partition) for partition in sorted(self._owned)]

    def lag(self) -> dict[str, int]:
        """Records behind the fetched end, per partition read here ("topic[p]")."""
        ends = self.ends()
        return {f"{self.topic}[{p}]": max(0, end - self._next.get(p, 0)) for p, end in sorted(ends.items())}

    def report(self) -> dict[str, Any]:
        """What /health shows: the market.trades partitions read here, how many records, the
        next offset of each and its end as the last fetch saw it."""
        ends = self.ends()
        return {"assigned_partitions": [f"{SOURCE}[{p}]" for p in sorted(self._owned)], "read": self.read,
                "next_offsets": {f"{SOURCE}[{p}]": o for p, o in sorted(self._next.items())},
                "fetched_ends": {f"{SOURCE}[{p}]": e for p, e in sorted(ends.items())}}

    @Service.task
    async def _read(self) -> None:
        try:
            await self._read_forever()
        except Exception as error:  # a bug: say so (/ready 503, FAILED), do not hide it
            self.status.fail(COMPONENT, error)

    async def _read_forever(self) -> None:
        wait_ms = max(1, int(self.settings.batch_wait_s * 1000))
        backoff = RETRY_BACKOFF_S
        quiet_since = time.monotonic()
        while not self.should_stop:
            if self._assignment_changed.is_set():
                self._apply_assignment()
            if not self._owned or self.on_run is None:
                await self._idle()
                continue
            timeout_ms = wait_ms
            if self._doze_s and time.monotonic() - quiet_since >= QUIET_AFTER_S:
                await self._doze()
                timeout_ms = 2 * self.settings.fetch_max_wait_ms  # the one fetch sent on resuming
            try:
                fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.settings.batch_max)
            except (KafkaError, OSError) as error:
                backoff = await self._retry_later(error, backoff)
                continue
            if fetched:
                quiet_since = time.monotonic()
                await self._let_the_next_fetch_go()
            for tp, records in fetched.items():
                if self._assignment_changed.is_set():
                    break  # fetched for an assignment that has changed: the new one re-reads it
                if tp.partition not in self._owned or not records:
                    continue
                try:
                    await self.on_run(run_of(tp.partition, records))
                except Exception as error:  # the driver has forgotten: read the run again after a pause
                    if not self._assignment_changed.is_set():
                        self.consumer.seek(tp, records[0].offset)
                    backoff = await self._retry_later(error, backoff)
                    break
                self.read += len(records)
                self._next[tp.partition] = records[-1].offset + 1
                backoff = RETRY_BACKOFF_S

    @staticmethod
    async def _let_the_next_fetch_go() -> None:
        """Yield to the loop before folding what was fetched: aiokafka's fetcher sends the next
        fetch request once the buffer is drained, but only when the loop runs it, and folding
        does not yield. Sent first, the broker's fetch wait overlaps the fold instead of
        following it (on the embedded broker a fetch is answered when its wait is over)."""
        for _ in range(FETCH_HANDOFF_YIELDS):
            await asyncio.sleep(0)

    async def _doze(self) -> None:
        """Pause the partitions read here for the agents' fetch wait (or until the assignment
        changes): no fetch is sent meanwhile; resumed, the next fetch asks again."""
        partitions = self.consumer.assignment()
        self.consumer.pause(*partitions)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._assignment_changed.wait(), timeout=self._doze_s)
        finally:
            self.consumer.resume(*partitions)

    async def _idle(self) -> None:
        """Wait for an assignment (or a short while)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._assignment_changed.wait(), timeout=0.1)

    async def _retry_later(self, error: BaseException, backoff: float) -> float:
        log.warning("trade reader could not fold (%s: %s); retrying in %.1f s", type(error).__name__, error, backoff)
        self.status.error(COMPONENT)
        await asyncio.sleep(backoff)
        return min(backoff * 2, MAX_RETRY_BACKOFF_S)
