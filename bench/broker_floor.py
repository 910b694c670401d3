"""The broker's share of the trade-to-candle latency: a plain consumer beside the worker.

``BrokerFloor`` reads market.trades from its end while the latency run's feed sends, in a
thread of the bench's own process: one aiokafka consumer, with the fetch wait the worker's
trade reader uses on that broker, that folds nothing. For each record it takes the time from
the record's timestamp to its arrival, as the worker does to its fold, so the two read side
by side: what the broker and the producer take, and what ticktide adds to it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

from aiokafka import AIOKafkaConsumer

from streams.ops.metrics import LatencyWindow
from streams.settings import Settings

POLL_TIMEOUT_MS = 100
START_TIMEOUT_S = 30.0


class BrokerFloor:
    """A plain consumer of ``topic`` in its own thread; the latencies it saw, as /health shows them."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self._window = LatencyWindow()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="broker-floor", daemon=True)

    def __enter__(self) -> BrokerFloor:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._error is not None:
            self._stop.set()
            raise RuntimeError(f"the broker-floor consumer did not start: {self._error or 'timed out'}")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def latency_ms(self) -> dict[str, float] | None:
        """p50/p99 (ms) of the last records read, as the worker's ``pipeline.latency_ms``."""
        with self._lock:
            return self._window.percentiles_ms()

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as error:  # reported by __enter__ (or lost with the run's end)
            self._error = error
            self._started.set()

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic, **self.settings.aiokafka_client_config(), group_id=None, enable_auto_commit=False,
            auto_offset_reset="latest", fetch_max_wait_ms=self.settings.fetch_max_wait_ms)
        await consumer.start()
        try:
            while not consumer.assignment():
                await asyncio.sleep(0.05)
            for partition in consumer.assignment():
                await consumer.position(partition)  # "latest" resolved now: the feed's trades come after
            self._started.set()
            while not self._stop.is_set():
                fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                now_ms = time.time() * 1000
                latencies = [max(0.0, (now_ms - r.timestamp) / 1000) for rs in fetched.values() for r in rs]
                with self._lock:
                    self._window.extend(latencies)
        finally:
            await consumer.stop()
