"""A backtest longer than memory: the response log holds more published outcomes than a
worker keeps in memory (here 4, standing in for the old bound of 100,000), and a replayed
instance still publishes every one of them, the oldest too, with no call to the Messages
API. A restart reads the log from where it was left (the rest is on disk)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from domain.enrich.assessment import fallback_assessment, validate_item
from domain.enrich.context import build_context, subject_of
from domain.enrich.outcome import Outcome
from schemas.records import Anomaly, Enrichment, EnrichmentSource, utc_now
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tables.enrichment import CACHE_TOPIC, published_record
from tests.factories import make_anomaly
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import free_port, run_cli, start_worker

pytestmark = pytest.mark.integration
APP = "rp"
LOGGED = 24
MEMORY = 4
GOOD = validate_item({"id": "0", "regime": "trending", "sentiment": 0.4, "risk_flags": ["volume_spike"],
                      "confidence": 0.8, "rationale": "Higher highs on rising volume."})[1]


def _live_outcome(n: int, anomaly: Anomaly) -> Outcome:
    """What live published for the n-th anomaly: a fallback for every third, else Claude's answer n."""
    if n % 3 == 0:
        context = build_context(subject_of(anomaly), [], 500)
        return Outcome(fallback_assessment(context.subject.facts, [], "breaker_open"), EnrichmentSource.FALLBACK,
                       reason="breaker_open")
    return Outcome(replace(GOOD, rationale=f"Live answer {n}."), EnrichmentSource.CLAUDE, model="claude-haiku-4-5",
                   input_tokens=100, output_tokens=30, latency_ms=800)


def _enrichments(settings: Settings) -> dict[str, Enrichment]:
    return {r.event.subject_event_id: r.event for r in read_topic(settings, f"{APP}.analysis.enrichments",
                                                                  idle_timeout=2, until_end=True)
            if isinstance(r, Consumed) and isinstance(r.event, Enrichment)}


@pytest.mark.timeout(300)
def test_a_replay_serves_outcomes_older_than_memory_holds_with_no_new_call(
        stack_settings: Settings, fake: FakeAnthropic, tmp_path: Path) -> None:
    anomalies = [make_anomaly(value=4.0 + n / 10) for n in range(LOGGED)]
    live = {a.envelope.event_id: _live_outcome(n, a) for n, a in enumerate(anomalies)}
    with EventProducer(stack_settings) as producer:  # live's response log, oldest first, then its anomalies
        for subject_id, outcome in live.items():
            record = published_record(subject_id, outcome, utc_now().timestamp())
            producer.send(CACHE_TOPIC, record, key=record.envelope.event_id)
        for anomaly in anomalies:
            producer.send("analysis.anomalies", anomaly)
    replayed = run_cli("replay", "--topic", "analysis.anomalies", "--into", APP, settings=stack_settings,
                       timeout=120)  # copies the response log too
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr

    isolated = stack_settings.model_copy(update={"app_id": APP, "topic_prefix": f"{APP}.",
                                                 "data_dir": tmp_path / "rp-data", "web_port": free_port()})
    env = {"TICKTIDE_ANTHROPIC_API_KEY": "test-key", "TICKTIDE_ANTHROPIC_BASE_URL": fake.url,
           "TICKTIDE_ENRICH_INPUTS": "anomalies", "TICKTIDE_ENRICH_BATCH_WAIT_S": "0.2",
           "TICKTIDE_ENRICH_CACHE_MEMORY_ENTRIES": str(MEMORY)}
    worker = start_worker(isolated, tmp_path / "rp.log", **env)
    try:
        deadline = time.monotonic() + 120
        published = _enrichments(stack_settings)
        while len(published) < LOGGED and time.monotonic() < deadline:
            time.sleep(1)
            published = _enrichments(stack_settings)
    finally:
        worker.discard()
    assert fake.calls == 0, "a replayed subject was asked again"
    assert published.keys() == live.keys()
    for subject_id, outcome in live.items():
        again = published[subject_id]
        assert (again.rationale, again.regime, again.sentiment) == (
            outcome.assessment.rationale, outcome.assessment.regime, outcome.assessment.sentiment)
        if outcome.source is EnrichmentSource.FALLBACK:
            assert again.source is EnrichmentSource.FALLBACK and again.fallback_reason == "breaker_open"
        else:
            assert again.source is EnrichmentSource.CACHE and again.input_tokens == 0

    restarted = start_worker(isolated, tmp_path / "rp-again.log", **env)
    try:
        restarted.wait_until(lambda h: h["ready"], 60, "the restarted worker to be ready")
        deadline = time.monotonic() + 30
        while "records read from" not in restarted.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        restarted.discard()
    assert f"0 records read from {APP}.{CACHE_TOPIC} (logged since the last start)" in restarted.log.read_text()
