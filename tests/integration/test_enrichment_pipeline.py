"""A real `ticktide worker` enriches anomalies, indicator snapshots and news against the
fake Messages API: one Enrichment per input event whatever the faults, the breaker opens
and recovers, and a replay under a new consumer group makes zero API calls."""

from __future__ import annotations

import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.records import DeadLetter, Enrichment, EnrichmentSource, Event
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.factories import T0, make_anomaly, make_indicator_snapshot, make_news, make_trade
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import WorkerProcess, http_json, start_worker

pytestmark = pytest.mark.integration


def _env(fake: FakeAnthropic, **extra: str) -> dict[str, str]:
    return {"TICKTIDE_ANTHROPIC_API_KEY": "test-key", "TICKTIDE_ANTHROPIC_BASE_URL": fake.url,
            "TICKTIDE_ANTHROPIC_TIMEOUT_S": "2", "TICKTIDE_ANTHROPIC_RETRY_AFTER_CAP_S": "0.5",
            "TICKTIDE_ENRICH_DEADLINE_S": "6", "TICKTIDE_ENRICH_BATCH_WAIT_S": "0.2",
            # Not the per-minute limits under test here: a failed attempt keeps its worst case
            # booked for a minute, which would hold the recovery back (tests/integration/test_enrichment_budget.py).
            "TICKTIDE_ENRICH_REQUESTS_PER_MIN": "0", "TICKTIDE_ENRICH_INPUT_TOKENS_PER_MIN": "0",
            "TICKTIDE_ENRICH_OUTPUT_TOKENS_PER_MIN": "0", "TICKTIDE_ENRICH_BREAKER_FAILURES": "3",
            "TICKTIDE_ENRICH_BREAKER_COOLDOWN_S": "1", "TICKTIDE_ENRICH_SNAPSHOT_EVERY_S": "0", **extra}


def _inputs() -> list[tuple[str, Event]]:
    events: list[tuple[str, Event]] = []
    for i in range(40):
        symbol = ("BTCUSDT", "ETHUSDT")[i % 2]
        end = T0 + timedelta(minutes=i // 2)
        events.append(("analysis.indicators", make_indicator_snapshot(
            symbol=symbol, candle_end=end, ema_fast=100 + i * 0.7, ema_slow=100 + i * 0.5,
            rsi=40 + i, atr=1 + (i % 5))))
    for i in range(20):
        events.append(("analysis.anomalies", make_anomaly(
            symbol=("BTCUSDT", "ETHUSDT")[i % 2], value=3.5 + i / 7)))
        events.append(("market.news", make_news(headline=f"Headline {i}: exchange lists a new pair",
                                                symbols=[("BTCUSDT", "ETHUSDT")[i % 2]])))
    return events


def _produce(settings: Settings, events: list[tuple[str, Event]]) -> set[str]:
    with EventProducer(settings) as producer:
        for topic, event in events:
            producer.send(topic, event)
    return {event.envelope.event_id for _, event in events}


def _enrichments(settings: Settings, expected: int, timeout: float = 120) -> list[Enrichment]:
    deadline = time.monotonic() + timeout
    found: list[Enrichment] = []
    while time.monotonic() < deadline:
        found = [r.event for r in read_topic(settings, "analysis.enrichments", idle_timeout=2, until_end=True)
                 if isinstance(r, Consumed) and isinstance(r.event, Enrichment)]
        if len(found) >= expected:
            return found
        time.sleep(1)
    raise AssertionError(f"only {len(found)} of {expected} enrichments arrived")


def _metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels`` (Prometheus' text parser)."""
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())


def test_every_event_gets_exactly_one_enrichment_under_faults_and_the_breaker_recovers(
        stack_settings: Settings, fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.script(*["server_error"] * 1000)  # an outage: the breaker opens
    ids = _produce(stack_settings, _inputs())
    with EventProducer(stack_settings) as producer:  # two records the agent cannot use
        producer.send_raw("analysis.anomalies", b"BTCUSDT", b"\x00\x00\x00\x00\x07garbage")
        producer.send_raw("market.news", b"wire", producer.codec.encode(make_trade()))
    worker = start_worker(stack_settings, tmp_path / "worker.log", **_env(fake))
    try:
        outage = _enrichments(stack_settings, len(ids))
        assert {e.source for e in outage} == {EnrichmentSource.FALLBACK}
        assert _metric(worker, "ticktide_enrichment_breaker_state", state="open") == 1
        assert _metric(worker, "ticktide_enrichment_breaker_state") == 1  # one state at a time
        during_outage = fake.calls
        assert during_outage < 20  # the open breaker kept most events from calling
        with fake.state.lock:  # the API comes back, with a mix of every fault
            fake.state.queue.clear()
        fake.mix({"normal": 0.5, "rate_limited": 0.1, "overloaded": 0.1, "server_error": 0.05,
                  "malformed": 0.05, "refusal": 0.05, "invalid": 0.05, "max_tokens": 0.05,
                  "slow": 0.05}, seed=3)
        fake.state.slow_s = 4.0
        time.sleep(1.5)  # the breaker's cool-down
        ids |= _produce(stack_settings, [(t, e) for t, e in _inputs() if t != "analysis.indicators"])
        found = _enrichments(stack_settings, len(ids))
        assert {e.subject_event_id for e in found} == ids  # none lost
        assert len({e.envelope.event_id for e in found}) == len(ids) == len(found)  # one each
        assert all(e.envelope.causation_id == e.subject_event_id for e in found)
        assert EnrichmentSource.CLAUDE in {e.source for e in found}
        assert all(e.rationale.startswith("Fallback assessment (") for e in found
                   if e.source is EnrichmentSource.FALLBACK)
        assert _metric(worker, "ticktide_enrichment_breaker_transitions_total") >= 3  # open, probe, close
        assert _metric(worker, "ticktide_enrichment_tokens_total") > 0
        assert _metric(worker, "ticktide_enrichment_fallbacks_total") >= len(outage)
        letters = [r.event for r in read_topic(stack_settings, "system.deadletter", idle_timeout=2, until_end=True)
                   if isinstance(r, Consumed) and isinstance(r.event, DeadLetter)
                   and r.event.agent == "enrichment"]  # other agents read these topics too
        assert sorted((d.source_topic, d.agent, d.error_type) for d in letters) == [
            ("analysis.anomalies", "enrichment", "UnknownSchemaId"),
            ("market.news", "enrichment", "UnexpectedRecordType")]
        assert letters[0].original_value is not None
    finally:
        worker.stop()


def test_a_replay_makes_zero_api_calls_and_identical_enrichments(
        stack_settings: Settings, fake: FakeAnthropic, tmp_path: Path) -> None:
    ids = _produce(stack_settings, _inputs())
    first = start_worker(stack_settings, tmp_path / "first.log", **_env(fake))
    try:
        pass_one = _enrichments(stack_settings, len(ids))
    finally:
        first.stop()
    assert {e.source for e in pass_one} == {EnrichmentSource.CLAUDE}
    calls = fake.calls
    assert calls > 0
    replay = stack_settings.model_copy(update={"app_id": stack_settings.app_id + "-replay",
                                               "data_dir": tmp_path / "replay"})
    second = start_worker(replay, tmp_path / "second.log", **_env(fake))
    try:
        both = _enrichments(stack_settings, 2 * len(ids))
    finally:
        second.stop()
    assert fake.calls == calls  # the replay asked nothing
    by_id: dict[str, list[Enrichment]] = {}
    for enrichment in both:
        by_id.setdefault(enrichment.envelope.event_id, []).append(enrichment)
    assert len(by_id) == len(ids)
    for original, replayed in by_id.values():
        assert replayed.source is EnrichmentSource.CACHE and replayed.cache_hit
        assert (replayed.regime, replayed.sentiment, replayed.risk_flags, replayed.confidence,
                replayed.rationale, replayed.model) == (
            original.regime, original.sentiment, original.risk_flags, original.confidence,
            original.rationale, original.model)


def test_assess_answers_on_demand_or_504_after_its_deadline(
        stack_settings: Settings, fake: FakeAnthropic, tmp_path: Path) -> None:
    snapshots = [(t, e) for t, e in _inputs() if t == "analysis.indicators"]
    ids = _produce(stack_settings, snapshots)
    worker = start_worker(stack_settings, tmp_path / "worker.log",
                          **_env(fake, TICKTIDE_ASSESS_TIMEOUT_S="3", TICKTIDE_ENRICH_DEADLINE_S="10",
                                 TICKTIDE_ANTHROPIC_TIMEOUT_S="8"))
    try:
        _enrichments(stack_settings, len(ids))  # the snapshots are in the worker's context
        calls = fake.calls
        status, body = http_json(f"{worker.url}/assess/btcusdt", timeout=30)
        assert status == 200, body
        assert body["symbol"] == "BTCUSDT" and body["source"] == "CLAUDE"
        assert -1 <= body["sentiment"] <= 1 and body["subject_type"] == "IndicatorSnapshot"
        assert fake.calls == calls + 1
        status, again = http_json(f"{worker.url}/assess/BTCUSDT", timeout=30)
        assert status == 200 and again["source"] == "CACHE" and fake.calls == calls + 1
        status, body = http_json(f"{worker.url}/assess/NOPE", timeout=30)
        assert status == 404 and "NOPE" in body["error"]
        status, body = http_json(f"{worker.url}/assess/BAD-SYMBOL!", timeout=30)
        assert status == 400 and body["parameter"] == "symbol"
        fake.state.slow_s = 8.0
        fake.script("slow")
        status, body = http_json(f"{worker.url}/assess/ETHUSDT", timeout=30)
        assert status == 504 and "ETHUSDT" in body["error"]
    finally:
        worker.stop()
