"""The seek before Faust's streams resume, on a real broker: a partition nobody committed,
whose records the consumer took from its fetcher without handing them to a stream (what
Faust does to records fetched while a rebalance pauses their partition), is read again from
its beginning. aiokafka's ``seek_to_committed`` alone leaves it past them: those records
were never processed (an anomaly never enriched after a worker was SIGKILLed, issue 11)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.faust.patches.lifecycle import _seek_to_committed_or_beginning
from streams.kafka.producer import EventProducer
from streams.settings import Settings

pytestmark = pytest.mark.integration
TOPIC = "analysis.anomalies"
RECORDS = 5


class ConsumerThread:
    """What the seek asks of Faust's consumer thread, over a real aiokafka consumer."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    async def seek_to_committed(self) -> Any:
        return await self.consumer.seek_to_committed()

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.consumer.seek(partition, offset)


async def _next_offset_after_dropping_a_fetch(settings: Settings, rewind: bool) -> int:
    """Join a group (no offset committed), take every record of partition 0 from the fetcher
    and drop it, seek as before streams resume, and return the offset fetched next."""
    topic = settings.topic_prefix + TOPIC
    consumer = AIOKafkaConsumer(
        topic, **settings.aiokafka_client_config(), group_id=f"rewind-{uuid.uuid4()}",
        enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=int(settings.session_timeout_s * 1000), heartbeat_interval_ms=1000)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        dropped: list[int] = []
        while len(dropped) < RECORDS:  # as Faust's getmany for a partition paused meanwhile
            fetched = await consumer.getmany(tp, timeout_ms=1000)
            dropped.extend(record.offset for record in fetched.get(tp, []))
        assert dropped == list(range(RECORDS))
        thread = ConsumerThread(consumer)
        if rewind:
            faust_consumer = SimpleNamespace(_thread=thread, _is_changelog_tp=lambda _: False)
            committed = await _seek_to_committed_or_beginning(faust_consumer)
        else:  # Faust's own seek_to_committed
            committed = await thread.seek_to_committed()
        assert committed[tp] is None, "nothing was committed"
        fetched = await consumer.getmany(tp, timeout_ms=5_000)
        return int(fetched[tp][0].offset if fetched.get(tp) else await consumer.position(tp))
    finally:
        await consumer.stop()


def test_a_partition_nobody_committed_is_read_again_from_its_beginning(stack_settings: Settings) -> None:
    with EventProducer(stack_settings) as producer:
        for n in range(RECORDS):
            producer.send_raw(stack_settings.topic_prefix + TOPIC, b"BTCUSDT", f"anomaly {n}".encode(), partition=0)
    # aiokafka's seek to the committed offsets leaves the position past the dropped records
    assert asyncio.run(_next_offset_after_dropping_a_fetch(stack_settings, rewind=False)) == RECORDS
    # the seek ticktide installs reads them again
    assert asyncio.run(_next_offset_after_dropping_a_fetch(stack_settings, rewind=True)) == 0
