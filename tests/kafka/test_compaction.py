"""Compaction is real on Apache Kafka: an overwritten key of the enrichment response log is
gone once the cleaner ran. The cleaner is tuned to work within a test: segments roll after
500 ms, any dirt is worth cleaning, the cleaner looks every 500 ms.

The recovery of a worker without local state from compacted table changelogs is not here
yet: its test (in this file's history) failed on the candle rows written through librdkafka
(a candles-table key decoded as a dict after the restart; /candles answered 404)."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from domain.enrich.assessment import validate_item
from domain.enrich.outcome import Outcome
from schemas.records import EnrichmentSource
from streams.devstack.kafka_cluster import KafkaCluster
from streams.kafka.admin import end_offsets
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_all
from streams.kafka.registry import make_registry
from streams.settings import Settings
from tables.enrichment import CACHE_TOPIC, cache_record, read_logged_answers
from tests.kafka.cluster import cluster_settings, start_cluster

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
    answers = {k: outcome for k, _, outcome, _ in read_logged_answers(settings, codec, time.time()).answers}
    assert answers[key].assessment.rationale == "The third answer.", "the newest answer survives"
    assert other in answers
