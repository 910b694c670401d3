"""Exactness under crashes: candles computed by workers that were SIGKILLed mid-stream
equal the pure reference computation over the same trades, none missing or doubled, and
so do the indicators the analysis made of them."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import pytest

from schemas.records import Trade
from streams.hotpath.reader import OWNERS
from streams.ingest import synthetic_trades
from streams.kafka.admin import create_topics
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.exactness import assert_exact as _assert_exact
from tests.exactness import assert_exact_indicators
from tests.harness import (
    FEED_STALL_IDLE_CLOSE_S,
    SHARED_GROUP_SESSION_TIMEOUT_S,
    BrokerUnderTest,
    WorkerProcess,
    settings_for,
    start_worker,
)

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT"]
TRADES = 40_000  # 8 symbols, 100 s of market time: thousands of candles, and the suite's CPU is shared
START = datetime(2024, 7, 19, tzinfo=UTC)  # old timestamps: event time, not wall clock
AGENT = "market.trades"
CHECKPOINT_S = 8.0


def _produce(settings: Settings, trades: list[Trade]) -> None:
    with EventProducer(settings) as producer:
        for trade in trades:
            producer.send("market.trades", trade)


def _feed(count: int = TRADES) -> list[Trade]:
    feed = synthetic_trades(SYMBOLS, seed=42, start=START, rate=400, out_of_order_share=0.02)
    return list(islice(feed, count))


@pytest.fixture
def exact_settings(isolated_broker: BrokerUnderTest, tmp_path: Path) -> Settings:
    """A 1 s grace, so the feed's out-of-order share leaves some trades late; workers fold
    while the feed is produced (``FEED_STALL_IDLE_CLOSE_S``); checkpoints every 8 s, so a
    killed worker's last ones are seconds behind what Faust committed for it (every 2.8 s)."""
    settings = settings_for(isolated_broker, tmp_path, grace_s=1.0, idle_close_s=FEED_STALL_IDLE_CLOSE_S,
                            checkpoint_s=CHECKPOINT_S)
    create_topics(settings)
    return settings


def test_sigkill_mid_stream_then_restart_gives_exact_candles(
        exact_settings: Settings, tmp_path: Path) -> None:
    stack_settings = exact_settings
    trades = _feed()
    worker = start_worker(stack_settings, tmp_path / "worker-1.log")
    try:
        _produce(stack_settings, trades)
        worker.wait_until(lambda h: h["agents"].get(AGENT, {}).get("processed", 0) >= TRADES // 3,
                          120, "a third of the trades to be processed")
        worker.stop(signal.SIGKILL)
        restarted = start_worker(stack_settings, tmp_path / "worker-2.log")
        try:
            _assert_exact(stack_settings, trades)
            assert_exact_indicators(stack_settings, trades)
        finally:
            restarted.stop()
    finally:
        worker.stop()


def _owned(health: dict, topic: str) -> int:
    """How many partitions of ``topic`` (internal topics: their name after the app id) a
    worker's Faust agents or its trade reader own."""
    names = [p.rsplit("[", 1)[0] for p in health["assigned_partitions"]]
    return sum(name == topic or name.endswith(f"-{topic}") for name in names)


def test_survivor_takes_over_a_killed_workers_partitions_exactly(
        exact_settings: Settings, tmp_path: Path) -> None:
    stack_settings = exact_settings.model_copy(update={"session_timeout_s": SHARED_GROUP_SESSION_TIMEOUT_S})
    trades = _feed()
    second_settings = replace_settings(stack_settings, tmp_path)
    first = start_worker(stack_settings, tmp_path / "worker-a.log")
    second = start_worker(second_settings, tmp_path / "worker-b.log")
    workers: list[WorkerProcess] = [first, second]
    try:
        for w in workers:  # both in both groups, each owning a share of the partitions
            w.wait_until(lambda h: _owned(h, "market.trades") and _owned(h, OWNERS),
                         90, "a share of market.trades and of its owners topic")
        _produce(stack_settings, trades)
        second.wait_until(lambda h: h["agents"].get(AGENT, {}).get("processed", 0) >= TRADES // 8,
                          120, "the second worker to make progress")
        second.stop(signal.SIGKILL)
        first.wait_until(lambda h: _owned(h, "market.trades") == _owned(h, OWNERS) == 4,
                         90, "the survivor to own every partition")
        _assert_exact(stack_settings, trades)
        assert_exact_indicators(stack_settings, trades)
    finally:
        for w in workers:
            w.stop()


def replace_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The same app (consumer group) with its own data dir and web port."""
    from tests.harness import free_port

    return settings.model_copy(update={"data_dir": tmp_path / "data-b", "web_port": free_port(),
                                       "worker_id": "worker-b"})
