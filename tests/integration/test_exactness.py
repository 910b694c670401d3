"""Exactness under crashes: candles computed by workers that were SIGKILLed mid-stream
equal the pure reference computation over the same trades, none missing or doubled."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest

from domain.candles import ClosedCandle, Tick, candle_record
from domain.clock import EPOCH
from schemas.records import Candle, Trade
from streams.hotpath.reader import OWNERS
from streams.ingest import synthetic_trades
from streams.kafka.admin import create_topics
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.json_form import event_to_json
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.harness import SHARED_GROUP_SESSION_TIMEOUT_S, BrokerUnderTest, WorkerProcess, settings_for, start_worker
from tests.reference import fold_reference

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT"]
TRADES = 100_000
START = datetime(2024, 7, 19, tzinfo=UTC)  # old timestamps: event time, not wall clock
AGENT = "market.trades"


def _feed() -> list[Trade]:
    feed = synthetic_trades(SYMBOLS, seed=42, start=START, rate=400, out_of_order_share=0.02)
    return list(islice(feed, TRADES))


def _tick(trade: Trade) -> Tick:
    return Tick(trade.symbol, trade.trade_id, (trade.trade_time - EPOCH) // timedelta(microseconds=1),
                int(trade.price.scaleb(18)), int(trade.size.scaleb(18)), trade.taker_side == "BUY")


def _produce(settings: Settings, trades: list[Trade]) -> None:
    with EventProducer(settings) as producer:
        for trade in trades:
            producer.send("market.trades", trade)


def _payload(candle: Candle) -> dict:
    shown = event_to_json(candle)
    shown.pop("envelope")
    return shown


def _collect(settings: Settings, topic: str) -> list:
    return [r.event for r in read_topic(settings, topic, idle_timeout=3) if isinstance(r, Consumed)]


def _assert_exact(settings: Settings, trades: list[Trade], timeout: float = 180) -> None:
    expected = fold_reference([_tick(t) for t in trades], settings.window_specs,
                              int(settings.grace_s * 1_000_000))
    wanted = {
        (s, i, start): _payload(candle_record(ClosedCandle(s, i, bar), "reference", START))
        for (s, i, start), bar in expected.candles.items()
    }
    deadline = time.monotonic() + timeout
    while True:
        candles = _collect(settings, "market.candles")
        by_id: dict[str, Candle] = {}
        for candle in candles:
            earlier = by_id.setdefault(candle.envelope.event_id, candle)
            assert _payload(earlier) == _payload(candle), "a re-emitted candle differs"
        got = {(c.symbol, c.interval, (c.window_start - EPOCH) // timedelta(microseconds=1)): _payload(c)
               for c in by_id.values()}
        if len(got) >= len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(got) == len(by_id), "two candle ids for one window"
    assert sorted(set(wanted) - set(got))[:5] == [], "missing candles"
    assert sorted(set(got) - set(wanted))[:5] == [], "unexpected candles"
    wrong = [k for k in wanted if wanted[k] != got[k]]
    assert wrong == [], f"{len(wrong)} candles differ, e.g. {wanted[wrong[0]]} != {got[wrong[0]]}"
    late = {(t.symbol, t.trade_id) for t in _collect(settings, "market.late")}
    assert late == {(t.symbol, t.trade_id) for t in expected.late}
    assert settings.grace_s > 1 or late, "the feed's out-of-order share should leave some late"


@pytest.fixture
def exact_settings(isolated_broker: BrokerUnderTest, tmp_path: Path) -> Settings:
    """A 1 s grace, so the feed's out-of-order share leaves some trades late."""
    settings = settings_for(isolated_broker, tmp_path, grace_s=1.0)
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
    finally:
        for w in workers:
            w.stop()


def replace_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The same app (consumer group) with its own data dir and web port."""
    from tests.harness import free_port

    return settings.model_copy(update={"data_dir": tmp_path / "data-b", "web_port": free_port(),
                                       "worker_id": "worker-b"})
