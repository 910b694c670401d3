"""The trade reader on a real broker: runs handed over in order, and the next fetch already
on its way while a run is folded (on the embedded broker a fetch is answered only when its
wait is over, so a fetch sent after the fold added that wait to every trade's latency)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from streams.hotpath.ports import Run
from streams.hotpath.reader import QUIET_AFTER_S, TradeReader
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


def test_a_quiet_reader_asks_the_broker_seldom_and_still_folds_the_next_trade(stack_settings: Settings) -> None:
    """An idle worker on the embedded broker: about ten fetches a second once its partitions
    have been quiet for a second (not a hundred), and a trade sent then is handed over."""
    status = WorkerStatus(stack_settings, CollectorRegistry(), NoRuntime(), Counter())
    fetches: list[float] = []
    handed: list[float] = []

    async def scenario() -> float:
        reader = TradeReader(stack_settings, status)
        await reader.start()
        client = reader.consumer._client  # count the fetch requests the reader's consumer sends
        send = client.send

        async def counted(node_id: int, request: Any, **kwargs: Any) -> Any:
            if type(request).__name__.startswith("FetchRequest"):
                fetches.append(time.monotonic())
            return await send(node_id, request, **kwargs)

        client.send = counted
        try:
            async def on_run(run: Run) -> None:
                handed.extend([time.monotonic()] * len(run.offsets))

            reader.on_run = on_run
            reader.follow({1: 0})  # a partition nothing is sent to until the end
            await asyncio.sleep(QUIET_AFTER_S + 0.5)
            fetches.clear()
            await asyncio.sleep(2.0)
            quiet_fetches = len(fetches)
            with EventProducer(stack_settings) as producer:
                producer.send_raw("market.trades", b"ETHUSDT", producer.codec.encode(make_trade(symbol="ETHUSDT")),
                                  partition=1)
                producer.flush()
            for _ in range(100):
                if handed:
                    break
                await asyncio.sleep(0.1)
            return quiet_fetches / 2.0
        finally:
            await reader.stop()

    per_second = asyncio.run(scenario())
    assert per_second <= 20, f"{per_second:.0f} fetches a second while quiet"  # 100 without dozing
    assert len(handed) == 1  # the trade after the quiet spell was read
