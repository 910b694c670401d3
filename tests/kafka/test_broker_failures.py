"""Broker failures on a 3-node Apache Kafka cluster (replication factor 3, min.insync.replicas
2, idempotent acks=all producers), with real recorded trades: the leader of the busiest
market.trades partition SIGKILLed while trades flow, and a worker SIGKILLed while a broker
is down. No acknowledged trade is lost, candles equal the independent reference, rebuilds
report equal; the time until the pipeline moves again and the duplicates are reported."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from domain.clock import EPOCH
from schemas.records import Anomaly, Enrichment, Event, PlaceOrder, Trade, TradeSignal
from streams.devstack.kafka_cluster import KafkaCluster
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.exactness import assert_exact, collect
from tests.harness import FEED_STALL_IDLE_CLOSE_S, WorkerProcess, http_json, run_cli, start_worker
from tests.kafka.cluster import (
    PacedProducer,
    busiest_partition,
    cluster_settings,
    duplicates,
    event_ids,
    log_findings,
    real_trades,
    report,
    settle,
    stall_evidence,
    start_cluster,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
TOPIC = "market.trades"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    started = start_cluster(tmp_path, 3)
    yield started
    started.stop(graceful=False)


def _us(trade: Trade) -> int:
    return (trade.trade_time - EPOCH) // timedelta(microseconds=1)


def _first_new_time(trades: list[Trade], before: int, symbol: str) -> int:
    """Trade time (us) of the first trade of ``symbol`` from index ``before`` on that is
    newer than every earlier one: once the fold's watermark reaches it, a trade sent after
    that moment went all the way through."""
    seen = max((_us(t) for t in trades[:before] if t.symbol == symbol), default=-1)
    return next(_us(t) for t in trades[before:] if t.symbol == symbol and _us(t) > seen)


def _watermark(worker: WorkerProcess, symbol: str) -> int:
    """The newest trade time (us) the worker's fold of ``symbol`` has seen (-1: none yet)."""
    status, body = http_json(f"{worker.url}/candles/{symbol}?interval=1m&limit=1")
    return int(body["watermark"]) if status == 200 else -1


def _wait_for_watermark(worker: WorkerProcess, symbol: str, at_least_us: int, timeout: float = 240,
                        since: float | None = None) -> float:
    """Seconds (from ``since``, default now) until the worker's fold of ``symbol`` reaches ``at_least_us``."""
    started = time.monotonic() if since is None else since
    seen = -1
    while time.monotonic() - started < timeout:
        seen = _watermark(worker, symbol)
        if seen >= at_least_us:
            return time.monotonic() - started
        time.sleep(0.1)
    answer = http_json(f"{worker.url}/candles/{symbol}?interval=1m&limit=1")
    raise AssertionError(f"the pipeline did not move on {symbol} in {timeout:.0f} s: watermark {seen} < "
                         f"{at_least_us}; /candles answered {answer}\n{stall_evidence(worker)}")


def _wait_ready(worker: WorkerProcess, since: float, timeout: float = 240) -> float:
    """Seconds from ``since`` until the worker answers /ready with 200 (partitions, tables recovered)."""
    while time.monotonic() - since < timeout:
        try:
            if http_json(f"{worker.url}/ready")[0] == 200:
                return time.monotonic() - since
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the worker was not ready {timeout:.0f} s after the kill\n{worker.tail()}")


def _wait_for_new_leader(cluster: KafkaCluster, partition: int, old: int, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        leader = cluster.leaders(TOPIC).get(partition, -1)
        if leader not in (-1, old):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"partition {partition} got no new leader in {timeout:.0f} s")


def _assert_replicated(settings: Settings, topics: tuple[str, ...] = (TOPIC,)) -> None:
    """Every partition of ``topics`` on 3 nodes; market.trades takes acks=all writes with 2 in sync."""
    admin = AdminClient(settings.kafka_client_config())
    for name in topics[1:]:
        found = admin.list_topics(name, timeout=10).topics[name]
        assert {len(p.replicas) for p in found.partitions.values()} == {3}, f"{name} is not replicated 3 times"
    deadline = time.monotonic() + 30
    while not admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions and time.monotonic() < deadline:
        time.sleep(0.2)  # a topic just created: its metadata reaches every node shortly
    topic = admin.list_topics(TOPIC, timeout=10).topics[TOPIC]
    assert {len(p.replicas) for p in topic.partitions.values()} == {3}
    assert _topic_config(admin, TOPIC, deadline)["min.insync.replicas"].value == "2"


def _topic_config(admin: AdminClient, name: str, deadline: float) -> dict[str, Any]:
    """A topic's config entries; asked again while the node asked does not know the topic yet
    (DescribeConfigs goes to any node, and a new topic's metadata reaches each one shortly)."""
    while True:
        try:
            return dict(next(iter(admin.describe_configs([ConfigResource("topic", name)]).values())).result())
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _assert_every_trade_once(settings: Settings, trades: list[Trade]) -> int:
    """Every acknowledged trade is on market.trades; the number stored twice."""
    stored = Counter((t.symbol, t.trade_id) for t in collect(settings, TOPIC))
    missing = {(t.symbol, t.trade_id) for t in trades} - set(stored)
    assert not missing, f"{len(missing)} acknowledged trades lost, e.g. {sorted(missing)[:3]}"
    return sum(n - 1 for n in stored.values())


def _assert_rebuilds_equal(settings: Settings) -> None:
    for what in ("candles", "portfolio"):
        rebuilt = run_cli("rebuild", what, settings=settings, timeout=300)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert "equals the live state" in rebuilt.stdout or "nothing to compare" in rebuilt.stdout


FAUST_OUTPUTS = {"signals": ("trading.signals", (TradeSignal,)), "orders": ("trading.commands", (PlaceOrder,)),
                 "trading_events": ("trading.events", (Event,))}
"""What Faust's agents produce (the strategy, the ledger), counted apart from the hot path's candles."""


def _trading_settings() -> dict[str, Any]:
    """The strategy trades the 1 s candles: the recorded trades cross its EMAs, so orders are
    placed and filled and trading.events has something to count (as in test_backtest_parity)."""
    return {"trading_interval": "1s", "order_quantity": Decimal("0.001")}


def _figures(settings: Settings, *logs: Path) -> dict[str, Any]:
    """Records and duplicates (an event id stored twice) per topic as a read_committed consumer
    sees them, the guarantee the worker ran with, and what its logs say went wrong."""
    settle(settings, ("trading.signals", "trading.commands", "trading.events"))
    figures: dict[str, Any] = {"processing_guarantee": settings.processing_guarantee}
    figures["candles"], figures["candle_duplicates"] = duplicates(settings, "market.candles")
    figures["heartbeats_committed"] = duplicates(settings, "system.heartbeats")[0]  # what the health table can see
    for name, (topic, kinds) in FAUST_OUTPUTS.items():
        figures[name], figures[f"{name}_duplicates"] = duplicates(settings, topic, kinds=kinds)
    # the strategy decides a snapshot once the enrichments it weighs are in (else 120 s later)
    anomalies = event_ids(settings, "analysis.anomalies", kinds=(Anomaly,))
    enriched = event_ids(settings, "analysis.enrichments", kinds=(Enrichment,),
                         id_of=lambda event: event.envelope.causation_id)
    figures["anomalies"], figures["anomalies_not_enriched"] = len(anomalies), len(set(anomalies) - set(enriched))
    return {**figures, **log_findings(*logs)}


def _check_figures(figures: dict[str, Any]) -> None:
    """Every anomaly was enriched, and orders were placed and filled, so the duplicates of
    trading.events were counted for real."""
    assert figures["anomalies_not_enriched"] == 0, f"anomalies never enriched: {figures}"
    assert figures["orders"] > 0 and figures["trading_events"] > 0, f"the feed made no orders: {figures}"


def test_leader_sigkill_while_trades_flow_loses_nothing_and_the_pipeline_moves_on(
        cluster: KafkaCluster, tmp_path: Path) -> None:
    # a failover stalls the feed for about the 9 s the controller takes to fence the node: with the
    # suite's 2 s idle close every window was closed meanwhile and the trades after it were late
    settings = cluster_settings(cluster, tmp_path, grace_s=1.0, idle_close_s=FEED_STALL_IDLE_CLOSE_S,
                                **_trading_settings())
    _assert_replicated(settings)
    trades = real_trades()
    half = len(trades) // 2
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        with EventProducer(settings) as producer:  # the first half, acknowledged
            for trade in trades[:half]:
                producer.send(TOPIC, trade)
        partition, symbol = busiest_partition(settings, TOPIC)
        _assert_replicated(settings, (TOPIC, f"{settings.app_id}-candles-changelog",
                                      f"{settings.app_id}-market.trades-owners"))
        leader = cluster.leaders(TOPIC)[partition]
        second = PacedProducer(settings, trades[half:])
        second.start()
        while second.sent < (len(trades) - half) // 4 and second.is_alive():
            time.sleep(0.02)
        sent_at_kill = half + second.sent
        folded_at_kill = _watermark(worker, symbol)
        killed_at = time.monotonic()
        cluster.kill(leader)
        new_leader_s = _wait_for_new_leader(cluster, partition, leader)
        # moved: the fold of the killed leader's partition advances again; caught up: it folded
        # a trade sent after the kill (includes working off the backlog of a loaded machine)
        moved_s = _wait_for_watermark(worker, symbol, folded_at_kill + 1, since=killed_at)
        progress_s = _wait_for_watermark(worker, symbol, _first_new_time(trades, sent_at_kill, symbol),
                                         since=killed_at)
        assert second.finish() == len(trades) - half, "every trade of the second half acknowledged"
        restarted_at = time.monotonic()
        cluster.restart(leader)
        rejoin_s = time.monotonic() - restarted_at
        trade_dups = _assert_every_trade_once(settings, trades)
        assert trade_dups == 0, "the idempotent producer stored a trade twice"
        candle_dups = assert_exact(settings, trades, expect_late=False)
        figures = _figures(settings, worker.log)  # settled first: the rebuilds compare finished state
        report("leader_sigkill", trades=len(trades), partition=partition, symbol=symbol, killed_node=leader,
               new_leader_s=round(new_leader_s, 1), fold_moved_again_s=round(moved_s, 1),
               trade_sent_after_kill_folded_s=round(progress_s, 1),
               restarted_node_registered_s=round(rejoin_s, 1), trade_duplicates=trade_dups,
               reemitted_candles=candle_dups, **figures)
        _assert_rebuilds_equal(settings)
        _check_figures(figures)
    finally:
        worker.discard()


def test_worker_sigkill_while_a_broker_is_down_recovers_exactly(cluster: KafkaCluster, tmp_path: Path) -> None:
    _worker_sigkill_while_a_broker_is_down(
        cluster, tmp_path, "worker_sigkill_broker_down", "a third of the first half folded",
        lambda health, half: health["agents"].get(TOPIC, {}).get("processed", 0) >= half // 3)


def test_worker_sigkill_right_after_enrichment_began_loses_no_enrichment(cluster: KafkaCluster,
                                                                         tmp_path: Path) -> None:
    """Killed once its enrichment agent finished its first batch: anomalies are on the topic and
    no enrichment offset is committed yet. The worker taking over fetched the first records of
    such a partition during table recovery, handed them to no agent, and Faust's seek left a
    partition nobody committed past them: 2 anomalies never enriched in 1 of 3 runs before
    the fix (streams/faust/patches/lifecycle.py, rewind_uncommitted_partitions)."""
    _worker_sigkill_while_a_broker_is_down(
        cluster, tmp_path, "worker_sigkill_enriching_broker_down", "the enrichment agent's first batch",
        lambda health, _: health["agents"].get("enrichment", {}).get("processed", 0) >= 1)


def _worker_sigkill_while_a_broker_is_down(cluster: KafkaCluster, tmp_path: Path, name: str, moment: str,
                                           kill_when: Callable[[dict[str, Any], int], bool]) -> None:
    """Worker 1 folds the first half; once ``kill_when(health, half)`` holds, the leader of the
    busiest market.trades partition and the worker are SIGKILLed; the worker is started again
    while the node is down, and the second half sent: everything as if nothing had happened."""
    settings = cluster_settings(cluster, tmp_path, grace_s=1.0, idle_close_s=FEED_STALL_IDLE_CLOSE_S,
                                **_trading_settings())
    trades = real_trades()
    half = len(trades) // 2
    first = start_worker(settings, tmp_path / "worker-1.log")
    try:
        with EventProducer(settings) as producer:
            for trade in trades[:half]:
                producer.send(TOPIC, trade)
        partition, symbol = busiest_partition(settings, TOPIC)
        first.wait_until(lambda h: kill_when(h, half), 120, moment)
        down = cluster.leaders(TOPIC)[partition]
        cluster.kill(down)
        first.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        fenced_s = cluster.wait_leaders_moved(down)  # measured; the worker could start at once
        second = start_worker(settings, tmp_path / "worker-2.log")  # the same worker again, a node still down
        try:
            started_s = time.monotonic() - killed_at
            ready_s = _wait_ready(second, killed_at)
            with EventProducer(settings) as producer:
                for trade in trades[half:]:
                    producer.send(TOPIC, trade)
            sent_s = time.monotonic() - killed_at - ready_s  # the worker idles meanwhile: below idle_close_s
            moved_s = _wait_for_watermark(second, symbol, _us(trades[-1]) if trades[-1].symbol == symbol
                                          else _first_new_time(trades, half, symbol))
            cluster.restart(down)
            _assert_every_trade_once(settings, trades)
            candle_dups = assert_exact(settings, trades, expect_late=False)
            figures = _figures(settings, first.log, second.log)  # settled first: the rebuilds compare finished state
            report(name, trades=len(trades), killed_node=down,
                   leaders_moved_s=round(fenced_s, 1), worker_started_after_kill_s=round(started_s, 1),
                   worker_ready_after_kill_s=round(ready_s, 1),
                   second_half_acknowledged_after_ready_s=round(sent_s, 1),
                   pipeline_moved_after_second_half_s=round(moved_s, 1),
                   reemitted_candles=candle_dups, **figures)
            _assert_rebuilds_equal(settings)
            _check_figures(figures)
        finally:
            second.discard()
    finally:
        first.discard()
