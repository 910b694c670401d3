"""Compaction is real on Apache Kafka: an overwritten key of the enrichment response log is
gone once the cleaner ran, and a worker that lost its local state recovers its tables
exactly from compacted changelogs. The cleaner is tuned to work within a test: segments
roll after 500 ms, any dirt is worth cleaning, the cleaner looks every 500 ms."""

from __future__ import annotations

import hashlib
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from domain.enrich.assessment import validate_item
from domain.enrich.cache import ResponseCache
from domain.enrich.outcome import Outcome
from schemas.records import EnrichmentSource
from streams.devstack.kafka_cluster import KafkaCluster
from streams.kafka.admin import end_offsets, list_topics
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_all
from streams.kafka.registry import make_registry
from streams.settings import Settings
from tables.enrichment import CACHE_TOPIC, cache_record
from tables.response_log import sync_log
from tests.harness import http_json, start_worker
from tests.kafka.cluster import cluster_settings, real_trades, report, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
FAST_CLEANING = {"segment.ms": "500", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    started = start_cluster(tmp_path, 1, **{"log.cleaner.backoff.ms": "500"})
    yield started
    started.stop(graceful=False)


def _clean_fast(settings: Settings, topics: list[str]) -> None:
    admin = AdminClient(settings.kafka_client_config())
    resources = [ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in FAST_CLEANING.items()
    ]) for topic in topics]
    for future in admin.incremental_alter_configs(resources).values():
        future.result()


def _stored(settings: Settings, topic: str) -> tuple[int, int]:
    """(records readable now, offsets written): fewer records than offsets = cleaned."""
    return sum(1 for _ in read_all(settings, topic)), sum(end_offsets(settings, topic))


def _answer(key: str, rationale: str) -> Any:
    item = validate_item({"id": "x", "regime": "trending", "sentiment": 0.25, "risk_flags": [],
                          "confidence": 0.5, "rationale": rationale})[1]
    outcome = Outcome(item, EnrichmentSource.CLAUDE, model="claude-haiku-4-5", input_tokens=10, output_tokens=5)
    return cache_record(key, f"subject-{key[:8]}", outcome, time.time())


def test_an_overwritten_key_of_the_enrichment_cache_is_gone_after_cleaning(
        cluster: KafkaCluster, tmp_path: Path) -> None:
    settings = cluster_settings(cluster, tmp_path)
    _clean_fast(settings, [CACHE_TOPIC])
    key, other = (hashlib.sha256(name.encode()).hexdigest() for name in ("overwritten", "kept"))
    with EventProducer(settings) as producer:
        for version in ("first", "second", "third"):
            producer.send(CACHE_TOPIC, _answer(key, f"The {version} answer."), key=key)
        producer.send(CACHE_TOPIC, _answer(other, "Another answer."), key=other)
    codec = AvroCodec(make_registry(settings.schema_registry_url))
    deadline = time.monotonic() + 90
    while True:
        time.sleep(1.0)
        with EventProducer(settings) as producer:  # an append rolls the old segment: it can be cleaned
            producer.send(CACHE_TOPIC, _answer(other, "Another answer."), key=other)
        keys = Counter((raw.key or b"").decode() for raw in read_all(settings, CACHE_TOPIC))
        if keys[key] == 1 or time.monotonic() > deadline:
            break
    assert keys[key] == 1, f"the overwritten key is still stored {keys[key]} times"
    cache = ResponseCache(ttl_s=86_400)
    sync_log(settings, codec, cache, time.time())
    newest = cache.get(key, "another-subject", time.time())
    assert newest is not None and newest.assessment.rationale == "The third answer.", "the newest answer survives"
    assert cache.get(other, "another-subject", time.time()) is not None


def _roll(settings: Settings, topic: str) -> None:
    """Append to each partition a copy of its newest record (the row it already holds: the
    table does not change), so that the segment holding the older rows is closed and can
    be cleaned: the cleaner never touches a partition's active segment, and with the state
    final the worker writes no more rows (in a first run nothing was cleaned without it)."""
    newest: dict[int, tuple[bytes | None, bytes | None]] = {}
    for raw in read_all(settings, topic):
        newest[raw.partition] = (raw.key, raw.value)
    producer = Producer(settings.kafka_client_config())
    for partition, (key, value) in newest.items():
        producer.produce(topic, key=key, value=value, partition=partition)
    assert producer.flush(30) == 0


def _changelogs(settings: Settings) -> list[str]:
    return [t for t in list_topics(settings) if t.startswith(f"{settings.app_id}-") and t.endswith("-changelog")]


def _without_ingest_time(value: Any) -> Any:
    """An answer without the envelopes' ingest times (the time of the answer, not of the data)."""
    if isinstance(value, dict):
        return {k: _without_ingest_time(v) for k, v in value.items() if k != "ingest_time"}
    if isinstance(value, list):
        return [_without_ingest_time(v) for v in value]
    return value


def _answers(url: str, symbols: list[str], intervals: list[str]) -> dict[str, Any]:
    """What a user sees of the tables: candles (closed and live) and indicators per symbol."""
    seen: dict[str, Any] = {}
    for symbol in symbols:
        for interval in intervals:
            status, body = http_json(f"{url}/candles/{symbol}?interval={interval}&limit=500")
            seen[f"candles {symbol} {interval}"] = (status, _without_ingest_time(body))
        status, body = http_json(f"{url}/indicators/{symbol}")
        seen[f"indicators {symbol}"] = (status, _without_ingest_time(body))
    return seen


def test_a_worker_that_lost_its_state_recovers_its_tables_exactly_from_compacted_changelogs(
        cluster: KafkaCluster, tmp_path: Path) -> None:
    settings = cluster_settings(cluster, tmp_path, grace_s=1.0)
    trades = real_trades()
    symbols = sorted({t.symbol for t in trades})
    worker = start_worker(settings, tmp_path / "worker-1.log")
    try:
        changelogs = _changelogs(settings)
        candles_log = f"{settings.app_id}-candles-changelog"
        assert candles_log in changelogs
        _clean_fast(settings, changelogs)
        chunk = len(trades) // 8
        for start in range(0, len(trades), chunk):  # rows rewritten at each checkpoint, segments rolling
            with EventProducer(settings) as producer:
                for trade in trades[start:start + chunk]:
                    producer.send("market.trades", trade)
            time.sleep(1.2)
        worker.wait_until(lambda h: h["agents"].get("market.trades", {}).get("processed", 0) >= len(trades),
                          180, "every trade folded")
        deadline = time.monotonic() + 90
        before = _answers(worker.url, symbols, ["1m", "5m"])
        while time.monotonic() < deadline:  # windows closed by the idle timeout, checkpointed
            time.sleep(3)
            now = _answers(worker.url, symbols, ["1m", "5m"])
            if now == before:
                break
            before = now
        records, offsets = _stored(settings, candles_log)
        deadline = time.monotonic() + 90
        while records >= offsets * 0.9 and time.monotonic() < deadline:
            _roll(settings, candles_log)
            time.sleep(2)
            records, offsets = _stored(settings, candles_log)
        assert records < offsets * 0.9, f"the candles changelog was not compacted: {records} of {offsets} kept"
    finally:
        worker.stop(signal.SIGKILL)
    shutil.rmtree(settings.data_dir)  # no local state: every table comes back from its changelog
    fresh = replace_data_dir(settings, tmp_path / "data-2")
    again = start_worker(fresh, tmp_path / "worker-2.log")
    try:
        deadline = time.monotonic() + 120
        after = _answers(again.url, symbols, ["1m", "5m"])
        while after != before and time.monotonic() < deadline:
            time.sleep(2)
            after = _answers(again.url, symbols, ["1m", "5m"])
        differ = [k for k in before if before[k] != after.get(k)]
        assert differ == [], f"recovered tables differ: {differ[:3]}: {after.get(differ[0]) if differ else ''}"
        assert all(status == 200 for status, _ in before.values())
        report("compacted_changelog_recovery", changelog=candles_log, records_kept=records, offsets_written=offsets)
    finally:
        again.discard()


def replace_data_dir(settings: Settings, data_dir: Path) -> Settings:
    """The same app on a new, empty data dir."""
    return settings.model_copy(update={"data_dir": data_dir})

