"""The trade reader on a real broker: runs handed over in order, and the next fetch already
on its way while a run is folded (on the embedded broker a fetch is answered only when its
wait is over, so a fetch sent after the fold added that wait to every trade's latency)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from prometheus_client import CollectorRegistry

from streams.hotpath.driver import Run
from streams.hotpath.reader import TradeReader
from streams.kafka.producer import EventProducer
from streams.ops.worker_status import WorkerStatus
from streams.settings import Settings
from tests.factories import T0, make_trade

BURSTS = 6
PER_BURST = 50


class NoRuntime:
    """A reader alone has no Faust runtime to report on."""

    def input_topics(self, agent: str) -> set[str]:
        return set()

    def assigned(self) -> list[tuple[str, int]]:
        return []

    def lag(self, topics: set[str] | None = None) -> dict[str, int]:
        return {}


def test_runs_arrive_in_order_with_the_next_fetch_already_sent(stack_settings: Settings) -> None:
    status = WorkerStatus(stack_settings, CollectorRegistry(), NoRuntime(), Counter())
    offsets: list[int] = []
    in_flight_while_folding: list[bool] = []

    async def scenario() -> None:
        reader = TradeReader(stack_settings, status)
        await reader.start()
        try:
            async def on_run(run: Run) -> None:
                # aiokafka's fetcher marks the broker as in flight while a fetch request waits
                in_flight_while_folding.append(bool(reader.consumer._fetcher._in_flight))
                offsets.extend(run.offsets)

            reader.on_run = on_run
            reader.follow({0: 0})
            with EventProducer(stack_settings) as producer:
                for burst in range(BURSTS):
                    for i in range(PER_BURST):
                        n = burst * PER_BURST + i
                        producer.send_raw("market.trades", b"BTCUSDT", producer.codec.encode(make_trade(
                            trade_id=n, trade_time=T0 + timedelta(milliseconds=n))), partition=0)
                    producer.flush()
                    await asyncio.sleep(0.3)  # a new fetch brings each burst
            for _ in range(100):
                if len(offsets) >= BURSTS * PER_BURST:
                    break
                await asyncio.sleep(0.1)
        finally:
            await reader.stop()

    asyncio.run(scenario())
    assert offsets == list(range(BURSTS * PER_BURST))  # every trade once, in order
    assert len(in_flight_while_folding) >= BURSTS
    assert all(in_flight_while_folding), in_flight_while_folding
