"""What Faust needs to run correctly and promptly on the embedded broker (Tansu).

Tansu answers a fetch only when its max wait is over, not when records arrive, and Faust
fixes its consumer's wait at 1.5 s: on Tansu the worker's consumer waits
``EngineTraits.agent_fetch_max_wait_ms`` instead (0.1 s; the candle fold's trade reader,
the hot path, waits ``fetch_max_wait_ms``, 10 ms).

Tansu answers ListOffsets "latest" with the base offset of a partition's last record
batch, not its end. Faust's table recovery reads each changelog partition up to that
figure, so a restarted or taking-over worker would silently miss the last batch of
changelog records (the newest table rows). On the embedded broker we give recovery the
true end: the high watermark of a real fetch (``streams.kafka.admin.end_offsets_of``, one
round for every changelog partition).
"""

from __future__ import annotations

import asyncio
import functools
import types
from collections import Counter
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from streams.faust.patches.private_api import require_tested_faust
from streams.kafka.admin import end_offsets_of
from streams.settings import Settings


def short_fetch_waits(wait_ms: int) -> None:
    """Make Faust's worker consumer wait at most ``wait_ms`` per fetch."""
    require_tested_faust("short_fetch_waits")
    thread = AIOKafkaConsumerThread
    original = getattr(thread._create_worker_consumer, "__wrapped__", thread._create_worker_consumer)

    @functools.wraps(original)
    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = wait_ms  # read by the consumer's fetcher when it starts
        return consumer

    thread._create_worker_consumer = create  # type: ignore[method-assign]


def use_fetched_high_watermarks(app: Any, settings: Settings) -> None:
    """Make the app's table recovery read changelogs to their true end."""
    require_tested_faust("use_fetched_high_watermarks")

    async def build_highwaters(self: Any, consumer: Any, tps: set[TP], destination: Counter[TP],
                               title: str) -> None:
        ends = await asyncio.to_thread(end_offsets_of, settings, sorted({tp.topic for tp in tps}))
        highwaters = {tp: ends[tp.topic][tp.partition] - 1 for tp in tps}  # Faust's convention: last offset
        self.log.info("Highwater for %s changelog partitions (fetched): %r", title, highwaters)
        destination.clear()
        destination.update(highwaters)

    recovery = app.tables.recovery
    recovery._build_highwaters = types.MethodType(build_highwaters, recovery)
