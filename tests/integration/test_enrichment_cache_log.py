"""The enrichment cache read back from ``analysis.enrichment_cache`` on the embedded broker:
hostile entries are ignored (their events are asked of Claude, not served from the
cache), and a topic that keeps growing cannot keep the reading going."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from domain.enrich.assessment import validate_item
from domain.enrich.breaker import CircuitBreaker
from domain.enrich.budget import Budget, Limits
from domain.enrich.cache import ResponseCache
from domain.enrich.context import Context, build_context, subject_of
from domain.enrich.outcome import Outcome
from schemas.records import Enrichment, EnrichmentSource, utc_now
from streams.claude.client import ClaudeClient
from streams.claude.enricher import Enricher
from streams.claude.metrics import EnrichmentMetrics
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tables.enrichment import CACHE_TOPIC, cache_record
from tables.response_log import sync_log
from tests.factories import make_anomaly, make_trade
from tests.fakes.anthropic_server import FakeAnthropic

pytestmark = pytest.mark.integration
MODEL = "claude-haiku-4-5"
GOOD = validate_item({"id": "x", "regime": "trending", "sentiment": 0.25, "risk_flags": ["volume_spike"],
                      "confidence": 0.5, "rationale": "Cached answer."})[1]


def _contexts(n: int) -> list[Context]:
    return [build_context(subject_of(make_anomaly(value=4.0 + i / 10)), [], 500) for i in range(n)]


def _answer(key: str, subject_id: str) -> Enrichment:
    outcome = Outcome(GOOD, EnrichmentSource.CLAUDE, model=MODEL, input_tokens=10, output_tokens=5)
    return cache_record(key, subject_id, outcome, utc_now().timestamp())


HOSTILE = {  # name -> how the entry for its context is spoiled
    "sentiment out of range": lambda r: replace(r, sentiment=7.5),
    "confidence not a number": lambda r: replace(r, confidence=float("nan")),
    "unknown risk flag": lambda r: replace(r, risk_flags=["buy_everything"]),
    "oversized rationale": lambda r: replace(r, rationale="Buy now. " * 500),
    "key of another entry": lambda r: replace(r, envelope=replace(r.envelope, event_id="0" * 64)),
    "stored in the future": lambda r: replace(
        r, envelope=replace(r.envelope, event_time=r.envelope.event_time + timedelta(days=3650))),
}


def test_hostile_cache_entries_are_ignored_and_their_events_asked_again(
        stack_settings: Settings, fake: FakeAnthropic) -> None:
    contexts = _contexts(len(HOSTILE) + 3)
    keys = [c.cache_key(MODEL) for c in contexts]
    with EventProducer(stack_settings) as producer:
        producer.send(CACHE_TOPIC, _answer(keys[0], "subject-0"), key=keys[0])  # a good one
        for n, spoil in enumerate(HOSTILE.values(), start=1):
            spoiled = producer.codec.encode(spoil(_answer(keys[n], f"subject-{n}")))  # the producer would refuse it
            producer.send_raw(CACHE_TOPIC, keys[n].encode(), spoiled)
        wrong_type, garbage = keys[-2], keys[-1]
        producer.send_raw(CACHE_TOPIC, wrong_type.encode(), producer.codec.encode(make_trade()))
        producer.send_raw(CACHE_TOPIC, garbage.encode(), b"\x00\x00\x00\x00\x07garbage")
    cache = ResponseCache(ttl_s=3600)
    synced = sync_log(stack_settings, producer.codec, cache, utc_now().timestamp())
    assert synced.read == len(HOSTILE) + 3
    assert sum(synced.ignored.values()) == len(HOSTILE) + 2
    client = ClaudeClient(api_key="test-key", model=MODEL, base_url=fake.url, timeout_s=5)
    enricher = Enricher(client=client, budget=Budget(Limits()), breaker=CircuitBreaker(), cache=cache,
                        metrics=EnrichmentMetrics(CollectorRegistry()))
    outcomes = asyncio.run(enricher.enrich(contexts, 10))
    assert outcomes[0].source is EnrichmentSource.CACHE and outcomes[0].assessment == GOOD
    assert [o.source for o in outcomes[1:]] == [EnrichmentSource.CLAUDE] * (len(contexts) - 1)
    assert all(-1 <= o.assessment.sentiment <= 1 and o.assessment.risk_flags != ("buy_everything",)
               for o in outcomes)
    assert fake.calls >= 1


@pytest.mark.timeout(120)  # reading until the topic goes quiet would never end here
def test_loading_stops_at_the_end_offsets_seen_at_the_start(stack_settings: Settings) -> None:
    before = 40
    with EventProducer(stack_settings) as producer:
        for n in range(before):
            key = f"{n:064x}"
            producer.send(CACHE_TOPIC, _answer(key, f"subject-{n}"), key=key)
    stop, sent = threading.Event(), [before]

    def keep_producing() -> None:  # another worker logging answers all the time
        with EventProducer(stack_settings) as busy:
            while not stop.is_set():
                key = f"{sent[0]:064x}"
                busy.send(CACHE_TOPIC, _answer(key, f"subject-{sent[0]}"), key=key)
                busy.flush()
                sent[0] += 1
                stop.wait(0.02)

    writer = threading.Thread(target=keep_producing, daemon=True)
    writer.start()
    try:
        while sent[0] < before + 3:  # the topic is busy before the load starts
            stop.wait(0.05)
        synced = sync_log(stack_settings, producer.codec, ResponseCache(ttl_s=3600), utc_now().timestamp())
        still_writing = writer.is_alive() and not stop.is_set()
    finally:
        stop.set()
        writer.join(30)
    assert still_writing  # the load returned while the topic kept growing
    assert before + 3 <= synced.read <= sent[0] and not synced.ignored
