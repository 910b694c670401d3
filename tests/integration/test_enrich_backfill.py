"""`ticktide enrich backfill` against the fake Messages API's batch endpoints, on the
embedded broker: the range's unanswered events go out as one batch, failed results are
left for the next run, a result nobody asked for is ignored, records that cannot be used
are reported, an interrupted run is picked up without a second batch, and a worker over
the range then publishes the backfilled answers without one live call about them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from domain.clock import to_micros
from domain.enrich.assessment import fallback_assessment
from domain.enrich.batch import PendingBatch
from domain.enrich.cache import ResponseCache
from domain.enrich.context import build_context, subject_of
from domain.enrich.outcome import Outcome
from schemas.records import Anomaly, Enrichment, EnrichmentSource, Event, IndicatorSnapshot, News
from streams.claude.batches import BatchClient
from streams.claude.enricher import client_from
from streams.cli.enrich.backfill import TOPICS
from streams.kafka.codec import AvroCodec
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.kafka.registry import make_registry
from streams.settings import Settings, load_settings
from streams.tools.backfill import StateFile, scan, write_answers
from tables.enrichment import CACHE_TOPIC, published_record
from tests.factories import T0, make_anomaly, make_envelope, make_indicator_snapshot, make_news, make_trade
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import REPO, cli_env, run_cli, start_worker

pytestmark = pytest.mark.integration
FROM, TO = T0, T0 + timedelta(minutes=30)
RANGE = ("--from", FROM.isoformat(), "--to", TO.isoformat())
ALL = ("--topic", "analysis.anomalies,analysis.indicators", "--topic", "market.news")


def _env(fake: FakeAnthropic) -> dict[str, str]:
    """The enrichment settings of both the backfill and the worker (the same contexts)."""
    return {"TICKTIDE_ANTHROPIC_API_KEY": "test-key", "TICKTIDE_ANTHROPIC_BASE_URL": fake.url,
            "TICKTIDE_ANTHROPIC_TIMEOUT_S": "5", "TICKTIDE_ENRICH_DEADLINE_S": "8",
            "TICKTIDE_ENRICH_BATCH_WAIT_S": "0.2", "TICKTIDE_ENRICH_BATCH_MAX": "4",
            "TICKTIDE_ENRICH_SNAPSHOT_EVERY_S": "0", "TICKTIDE_ENRICH_REQUESTS_PER_MIN": "0",
            "TICKTIDE_ENRICH_REFRESH_FALLBACKS": "true"}  # live's fallbacks give way to backfilled answers


def _at(cls: type[Event], minutes: float) -> dict[str, object]:
    return {"envelope": make_envelope(cls, event_time=T0 + timedelta(minutes=minutes))}


def _history(settings: Settings) -> tuple[dict[str, Event], dict[str, Event]]:
    """Events in the range (by id) and before it."""
    inside: list[Event] = []
    for i in range(8):
        end = T0 + timedelta(minutes=i + 1)
        inside.append(make_indicator_snapshot(candle_end=end, rsi=40 + 3 * i, ema_fast=100 + i, **_at(
            IndicatorSnapshot, i + 1)))
        inside.append(make_anomaly(value=3.5 + i / 4, **_at(Anomaly, i + 1.5)))
    inside += [make_news(headline=f"Exchange {i} lists a new pair", symbols=["BTCUSDT"], **_at(News, 10 + i))
               for i in range(4)]
    before = [make_anomaly(value=9.0 + i, **_at(Anomaly, -60 - i)) for i in range(2)]
    with EventProducer(settings) as producer:
        for event in [*before, *inside]:
            topic = {Anomaly: "analysis.anomalies", IndicatorSnapshot: "analysis.indicators",
                     News: "market.news"}[type(event)]
            producer.send(topic, event)
        producer.send_raw("analysis.anomalies", b"BTCUSDT", b"\x00\x00\x00\x00\x07garbage")
        producer.send_raw("market.news", b"wire", producer.codec.encode(make_trade()))
    return ({e.envelope.event_id: e for e in inside}, {e.envelope.event_id: e for e in before})


def _answers(settings: Settings) -> dict[str, Enrichment]:
    """Claude's answers in the response log, by subject id."""
    return {r.event.subject_event_id: r.event for r in read_topic(settings, CACHE_TOPIC, idle_timeout=2)
            if isinstance(r, Consumed) and isinstance(r.event, Enrichment) and r.event.subject_type == "cache"}


def _run(settings: Settings, fake: FakeAnthropic, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_cli("enrich", "backfill", *ALL, *RANGE, "--poll", "0.05", *args, settings=settings, **_env(fake))
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_backfill_leaves_failures_for_the_next_run_and_a_worker_then_asks_nothing_about_the_range(
        stack_settings: Settings, fake: FakeAnthropic, tmp_path: Path) -> None:
    inside, before = _history(stack_settings)
    fake.batches.script("succeeded", "errored", "succeeded", "expired", "invalid")  # then all succeed
    stray = {"custom_id": "r999", "result": {"type": "succeeded", "message": {
        "id": "m", "type": "message", "role": "assistant", "model": "x", "stop_reason": "tool_use",
        "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
        "content": [{"type": "tool_use", "id": "t", "name": "record_assessments", "input": {"assessments": [
            {"id": "0", "regime": "trending", "sentiment": 1.0, "risk_flags": [], "confidence": 1.0,
             "rationale": "Buy everything."}]}}]}}}
    fake.batches.extra_results.append(json.dumps(stray).encode())

    fell_back = next(i for i, e in inside.items() if isinstance(e, Anomaly))  # live fell back for it
    outcome = Outcome(fallback_assessment({"kind": "anomaly"}, [], "budget_daily_usd"), EnrichmentSource.FALLBACK,
                      reason="budget_daily_usd")
    with EventProducer(stack_settings) as producer:
        record = published_record(fell_back, outcome, time.time())
        producer.send(CACHE_TOPIC, record, key=record.envelope.event_id)
    dry = _run(stack_settings, fake, "--dry-run")
    assert "1 of them had a fallback published live" in dry.stdout
    assert "asking 20 events in 5 batch requests" in dry.stdout and fake.batches.creates == 0
    first = _run(stack_settings, fake)
    assert f"in range: {len(inside)} events to enrich, 0 already answered" in first.stdout
    assert "skipped 2 records that cannot be used" in first.stdout
    assert "analysis.anomalies: UnknownSchemaId" in first.stdout
    assert "market.news: UnexpectedRecordType" in first.stdout
    assert "ignored 1 results for requests that were not asked: r999" in first.stdout
    asked = fake.batches.items()
    assert len(asked) == len(inside) and fake.batches.creates == 1  # nothing outside the range
    assert fake.calls == 0 and not fake.state.requests  # no live call
    logged = _answers(stack_settings)
    left = set(inside) - set(logged)
    assert set(logged) <= set(inside) and len(left) == 3 * 4  # 4 items a request: errored, expired, invalid
    assert "left for a later run: 4 errored, 4 expired, 4 sentiment 3.0 outside" in first.stdout
    assert all(a.rationale != "Buy everything." for a in logged.values())
    assert "0.0 cache read, 0.0 cache write" in first.stdout  # the prefix is below the cache minimum

    second = _run(stack_settings, fake)
    assert f"{len(inside) - len(left)} already answered in the response log, {len(left)} without" in second.stdout
    assert len(fake.batches.items()) == len(asked) + len(left) and fake.batches.creates == 2
    assert set(_answers(stack_settings)) == set(inside)
    third = _run(stack_settings, fake)
    assert "nothing to ask" in third.stdout and fake.batches.creates == 2

    worker = start_worker(stack_settings, tmp_path / "worker.log", **_env(fake))
    try:
        deadline, found = time.monotonic() + 120, {}
        while time.monotonic() < deadline and len(found) < len(inside) + len(before):
            found = {r.event.subject_event_id: r.event for r in read_topic(
                stack_settings, "analysis.enrichments", idle_timeout=2)
                if isinstance(r, Consumed) and isinstance(r.event, Enrichment)}
            time.sleep(0.5)
    finally:
        worker.discard()
    assert set(found) == set(inside) | set(before)
    answers = _answers(stack_settings)
    for subject_id in inside:
        published, answered = found[subject_id], answers[subject_id]
        assert published.source is EnrichmentSource.CACHE, published
        assert (published.regime, published.sentiment, published.rationale) == (
            answered.regime, answered.sentiment, answered.rationale)
    live_items = [item for request in fake.state.requests for item in request]
    assert sorted(item["value"] for item in live_items) == sorted(  # only the events before the range
        e.value for e in before.values() if isinstance(e, Anomaly))


def test_an_interrupted_backfill_is_picked_up_without_a_second_batch(
        stack_settings: Settings, fake: FakeAnthropic) -> None:
    inside, _ = _history(stack_settings)
    gone = PendingBatch("msgbatch_gone", "2026-01-01T00:00:00+00:00", "claude-haiku-4-5", "",
                        {"r0": (("ab" * 32, "subject-gone"),)})
    StateFile.of(stack_settings).save([gone])  # a batch the API does not know (any more)
    fake.batches.hold = True  # the batch stays in progress until released
    args = [sys.executable, "-m", "streams.cli", "enrich", "backfill", *ALL, *RANGE, "--poll", "0.05"]
    process = subprocess.Popen(args, env=cli_env(stack_settings, **_env(fake)), cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while fake.batches.looks == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # created, and followed
        assert fake.batches.creates == 1, process.communicate(timeout=5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out + err
    assert "batch msgbatch_gone is unknown to the API" in err and "forgotten" in err
    assert "interrupted: batch msgbatch_fake0001 keeps running" in err and "run the same command again" in err
    assert not _answers(stack_settings)
    state = json.loads(next(Path(stack_settings.data_dir).glob("enrich-backfill.*.json")).read_text())
    assert [b["id"] for b in state["batches"]] == ["msgbatch_fake0001"]

    fake.batches.hold = False
    resumed = _run(stack_settings, fake)
    assert "picking up batch msgbatch_fake0001" in resumed.stderr
    assert f"batch msgbatch_fake0001: wrote {len(inside)} answers" in resumed.stdout
    assert "nothing to ask" in resumed.stdout
    assert fake.batches.creates == 1 and fake.calls == 0
    assert set(_answers(stack_settings)) == set(inside)
    state = json.loads(next(Path(stack_settings.data_dir).glob("enrich-backfill.*.json")).read_text())
    assert state["batches"] == []


def test_results_that_stop_making_sense_are_reported_not_trusted(fake: FakeAnthropic) -> None:
    client = BatchClient(api_key="test-key", model="claude-haiku-4-5", base_url=fake.url)
    contexts = [build_context(subject_of(make_anomaly(value=4.0 + i)), [], 500) for i in range(3)]
    fake.batches.script("succeeded", "canceled", "succeeded")
    fake.batches.extra_results += [
        json.dumps({"custom_id": "r1", "result": {"type": "succeeded"}}).encode(),  # a second result for r1
        json.dumps({"custom_id": "r2", "result": {"type": "teleported"}}).encode(),
        b"{not json",
        json.dumps({"custom_id": "r0", "result": {"type": "succeeded"}}).encode(),  # after the break: unread
    ]
    status = client.create([client.request(f"r{i}", {"0": c}) for i, c in enumerate(contexts)])
    while not client.retrieve(status.batch_id).ended:
        pass
    asked = {f"r{i}": ["0"] for i in range(3)}
    results = list(client.results(status.batch_id, asked))
    assert [(r.custom_id, r.kind) for r in results] == [
        ("r0", "succeeded"), ("r1", "canceled"), ("r2", "succeeded"), ("r1", "succeeded"),
        ("r2", "unreadable"), ("", "unreadable")]
    assert list(results[0].assessments) == ["0"] and results[0].tokens.uncached > 0
    assert not results[3].assessments and "0" in results[3].problems  # a success without a message
    assert "stop making sense" in results[-1].detail
    batch = PendingBatch(status.batch_id, "now", "claude-haiku-4-5", "",
                         {cid: ((f"{n:064x}", f"subject-{n}"),) for n, cid in enumerate(asked)})
    sent: list[tuple[str, bytes]] = []

    class Recorder:  # what write_answers sends, without a broker
        codec = AvroCodec(make_registry(None), 1 << 20)

        def send_raw(self, topic: str, key: bytes, value: bytes) -> None:
            sent.append((topic, key))

        def flush(self) -> int:
            return len(sent)

    written = write_answers(load_settings(), Recorder(), batch, results, time.time)  # type: ignore[arg-type]
    assert written.answers == 2 and sent == [(CACHE_TOPIC, f"{0:064x}".encode()), (CACHE_TOPIC, f"{2:064x}".encode())]
    assert written.unknown == ["r1", "r2"] and written.left == {"canceled": 1}
    assert any("stop making sense" in d for d in written.details)


def test_the_backfill_asks_with_the_context_and_cache_key_live_used(
        stack_settings: Settings, fake: FakeAnthropic, tmp_path: Path) -> None:
    events: list[tuple[str, Event]] = []
    for i in range(4):  # in event-time order, as they happen live: snapshots are context for what follows
        events.append(("analysis.indicators", make_indicator_snapshot(
            candle_end=T0 + timedelta(minutes=i + 1), rsi=45 + 5 * i, **_at(IndicatorSnapshot, i + 1))))
        events.append(("analysis.anomalies", make_anomaly(value=3.5 + i, **_at(Anomaly, i + 1.5))))
    events.append(("market.news", make_news(headline="Exchange lists a new pair", symbols=["BTCUSDT"],
                                            **_at(News, 6))))
    tight = "250"  # tokens of context: the oldest history is trimmed, by the calibrated estimate
    fake.state.bytes_per_token = 2  # a tokenizer far from the default estimate of 3.5 characters a token
    worker = start_worker(stack_settings, tmp_path / "worker.log", **_env(fake),
                          TICKTIDE_ENRICH_CONTEXT_TOKENS=tight)
    try:
        with EventProducer(stack_settings) as producer:
            for n, (topic, event) in enumerate(events, start=1):
                producer.send(topic, event)
                producer.flush()
                deadline = time.monotonic() + 60  # live asks about it before the next one happens
                while len(fake.state.requests) < n and time.monotonic() < deadline:
                    time.sleep(0.05)
        deadline = time.monotonic() + 60
        while len(_answers(stack_settings)) < len(events) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.discard()
    assert [len(items) for items in fake.state.requests] == [1] * len(events)  # one live call each, in order
    live_keys = {subject_id: answer.envelope.event_id for subject_id, answer in _answers(stack_settings).items()}
    assert set(live_keys) == {e.envelope.event_id for _, e in events}

    settings = stack_settings.model_copy(update={  # the worker's enrichment settings (_env)
        "anthropic_api_key": SecretStr("test-key"), "anthropic_base_url": fake.url, "enrich_snapshot_every_s": 0,
        "enrich_batch_max": 4, "enrich_context_tokens": int(tight)})
    live = client_from(settings)
    assert live is not None
    chars_per_token = asyncio.run(live.calibrate())
    found = scan(settings, AvroCodec(make_registry(None), settings.max_record_bytes), list(TOPICS),
                 to_micros(FROM), to_micros(TO), settings.anthropic_model, chars_per_token,
                 ResponseCache(settings.enrich_cache_ttl_s), time.time())  # as if nothing were logged
    backfill_keys = {c.subject.event_id: key for key, contexts in found.wanted.items() for c in contexts}
    assert backfill_keys == live_keys
    histories = [len(c.history) for contexts in found.wanted.values() for c in contexts]
    assert 0 < max(histories) < 4  # with history, trimmed to the budget
