"""Parity compares what instances published, not what it cost them, and names the first
difference; the response log keeps every published outcome, fallbacks with their reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from domain.clock import to_micros
from domain.enrich.assessment import InvalidAnswer, fallback_assessment
from domain.enrich.cache import ResponseCache, published_outcome, subject_key
from domain.enrich.context import build_context, subject_of
from domain.enrich.outcome import Outcome
from domain.parity import compare, in_range
from schemas.records import EnrichmentSource, Regime
from tables.enrichment import published_record
from tests.factories import T0, make_anomaly, make_enrichment, make_trade_signal


def test_an_answer_from_the_cache_equals_claudes_and_a_fallback_does_not() -> None:
    live = make_enrichment(source=EnrichmentSource.CLAUDE, input_tokens=800, latency_ms=1400.0)
    cached = replace(live, source=EnrichmentSource.CACHE, cache_hit=True, input_tokens=0, output_tokens=0,
                     latency_ms=0.0, envelope=replace(live.envelope, ingest_time=T0 + timedelta(days=3)))
    assert compare("enrichments", [live], [cached]).equal
    fallback = replace(cached, source=EnrichmentSource.FALLBACK, fallback_reason="deadline")
    report = compare("enrichments", [live], [fallback])
    assert not report.equal and report.difference is not None
    assert (report.difference.index, report.difference.live, report.difference.other) == (0, live, fallback)


def test_duplicates_count_once_and_the_first_difference_is_in_event_time_order() -> None:
    signals = [make_trade_signal(envelope=replace(make_trade_signal().envelope, event_id=f"s{i}",
                                                  event_time=T0 + timedelta(seconds=i))) for i in range(4)]
    assert compare("signals", signals + signals[:2], list(reversed(signals))).equal  # at least once
    changed = replace(signals[2], reason="another reason")
    report = compare("signals", signals, [signals[0], signals[1], changed, signals[3]])
    assert report.difference is not None and report.difference.index == 2
    missing = compare("signals", signals, signals[:3])
    assert missing.difference is not None and missing.difference.other is None and missing.other_count == 3
    assert in_range(signals, to_micros(T0 + timedelta(seconds=1)), to_micros(T0 + timedelta(seconds=3))) \
        == signals[1:3]


def test_a_logged_fallback_is_replayed_as_the_same_fallback_unless_refresh_is_asked() -> None:
    context = build_context(subject_of(make_anomaly()), [], 500)
    subject_id = context.subject.event_id
    fallback = Outcome(fallback_assessment(context.subject.facts, [], "breaker_open"), EnrichmentSource.FALLBACK,
                       reason="breaker_open")
    record = published_record(subject_id, fallback, T0.timestamp())
    assert record.envelope.event_id == subject_key(subject_id) and record.fallback_reason == "breaker_open"
    cache = ResponseCache(ttl_s=1)  # a TTL long past: what was published is history, not a cached answer
    cache.publish(subject_id, published_outcome(record.envelope.event_id, record, T0.timestamp() + 10**7))
    again = cache.replayed(subject_id)
    assert again is not None and (again.source, again.reason, again.assessment) == (
        EnrichmentSource.FALLBACK, "breaker_open", fallback.assessment)
    assert cache.replayed(subject_id, refresh_fallbacks=True) is None
    claude = Outcome(replace(fallback.assessment, regime=Regime.TRENDING, rationale="Claude."),
                     EnrichmentSource.CLAUDE, model="claude-haiku-4-5", input_tokens=90)
    cache.publish(subject_id, claude)
    served = cache.replayed(subject_id, refresh_fallbacks=True)
    assert served is not None and served.source is EnrichmentSource.CACHE and served.input_tokens == 0


def test_a_forged_published_entry_is_refused() -> None:
    context = build_context(subject_of(make_anomaly()), [], 500)
    outcome = Outcome(fallback_assessment(context.subject.facts, [], "deadline"), EnrichmentSource.FALLBACK,
                      reason="deadline")
    record = published_record(context.subject.event_id, outcome, T0.timestamp())
    with pytest.raises(InvalidAnswer, match="subject"):
        published_outcome(subject_key("another-subject"), record, T0.timestamp())
    with pytest.raises(InvalidAnswer, match="reason"):
        published_outcome(record.envelope.event_id, replace(record, fallback_reason=None), T0.timestamp())
    with pytest.raises(InvalidAnswer):
        published_outcome(record.envelope.event_id, replace(record, sentiment=9.0), T0.timestamp())
