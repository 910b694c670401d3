"""`ticktide replay` of several topics (or a named set) into a new app: one history merged
by event time (each partition in its order), the live response log copied along."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from schemas.records import Event
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_all
from streams.settings import Settings
from streams.tools.replay import Bound, merged, plan
from tests.factories import T0, make_anomaly, make_indicator_snapshot, make_news
from tests.harness import run_cli

pytestmark = pytest.mark.integration


def _at(event: Event, seconds: int, n: int) -> Event:
    envelope = replace(event.envelope, event_id=f"e-{n}", event_time=T0 + timedelta(seconds=seconds))
    return replace(event, envelope=envelope)  # type: ignore[type-var]


def test_several_topics_replay_as_one_history_in_event_time_order(stack_settings: Settings) -> None:
    # sent one topic after the other, as a live system never would
    snapshots = [_at(make_indicator_snapshot(), s, s) for s in (0, 2, 4, 6)]
    anomalies = [_at(make_anomaly(), s, s) for s in (1, 3, 5, 7)]
    news = [_at(make_news(headline=f"Headline {s}", symbols=["BTCUSDT"]), s, 100 + s) for s in (2, 5)]
    with EventProducer(stack_settings) as producer:
        for topic, events in (("analysis.indicators", snapshots), ("analysis.anomalies", anomalies),
                              ("market.news", news)):
            for event in events:
                producer.send(topic, event)
        producer.send_raw("analysis.enrichment_cache", b"0" * 64, b"\x00\x00\x00\x00\x07logged")

    the_plan = plan(stack_settings, ["analysis.indicators", "analysis.anomalies", "market.news"],
                    Bound(offset=0), None, "merge1")
    order = [(source.topic, producer.codec.decode(raw.value).envelope.event_id)
             for _, source, raw in merged(stack_settings, the_plan, producer.codec)]
    by_time = [*snapshots, *anomalies, *news]  # at equal times, in the order the topics were named
    by_time.sort(key=lambda e: e.envelope.event_time)
    topic_of = {**dict.fromkeys((e.envelope.event_id for e in snapshots), "analysis.indicators"),
                **dict.fromkeys((e.envelope.event_id for e in anomalies), "analysis.anomalies"),
                **dict.fromkeys((e.envelope.event_id for e in news), "market.news")}
    assert order == [(topic_of[e.envelope.event_id], e.envelope.event_id) for e in by_time]

    done = run_cli("replay", "--set", "strategy", "--into", "merge2", settings=stack_settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replayed 10 of 10 records into merge2.analysis.indicators, merge2.analysis.anomalies, " \
           "merge2.market.news" in done.stdout
    assert "copied 1 response log record into merge2" in done.stderr
    assert len(list(read_all(stack_settings, "merge2.analysis.anomalies"))) == len(anomalies)
    assert [r.value for r in read_all(stack_settings, "merge2.analysis.enrichment_cache")] == [
        b"\x00\x00\x00\x00\x07logged"]
    again = run_cli("replay", "--topic", "market.news", "--into", "merge2", settings=stack_settings)
    assert again.returncode == 0 and "copied 0 response log records" in again.stderr  # not twice
    refused = run_cli("replay", "--set", "everything", "--into", "merge3", settings=stack_settings)
    assert refused.returncode == 1 and "--set 'everything' is not a named set" in refused.stderr
