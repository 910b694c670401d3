"""Health of a running worker against the real embedded broker: heartbeats folded into
the health table, /health's system view, /live and /ready, lifecycle on shutdown."""

from __future__ import annotations

import signal
import time
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.records import ComponentStatus, Heartbeat, Lifecycle, utc_now
from streams.kafka.admin import create_topics
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.factories import T0, make_trade
from tests.harness import BrokerUnderTest, http_json, settings_for, start_worker

AGENT = "market.trades"


@pytest.fixture
def health_settings(isolated_broker: BrokerUnderTest, tmp_path: Path) -> Settings:
    settings = settings_for(isolated_broker, tmp_path, heartbeat_period_s=1.0)
    create_topics(settings)
    return settings


def _system(health: dict) -> dict:
    return health.get("system") or {}


def test_health_table_shows_every_component_live_and_a_silent_worker_as_failed(
        health_settings: Settings, tmp_path: Path) -> None:
    worker = start_worker(health_settings, tmp_path / "worker.log")
    try:
        with EventProducer(health_settings) as producer:
            for i in range(200):
                producer.send("market.trades", make_trade(
                    symbol=("BTCUSDT", "ETHUSDT")[i % 2], trade_id=i, price=Decimal("100") + i,
                    trade_time=T0 + timedelta(milliseconds=250 * i)))
            producer.send_raw("market.trades", b"BTCUSDT", b"\x05not a record")
            # a worker that beat once, 30 s ago, with a 1 s period: it has failed since
            producer.send("system.heartbeats", Heartbeat(
                envelope=Heartbeat.envelope_for(event_time=utc_now() - timedelta(seconds=30),
                                                producer="test"),
                component="worker", worker_id="ghost", host="nowhere", pid=1, uptime_seconds=1.0,
                events_processed=0, sequence=0, period_seconds=1.0))

        def ours_reported(h: dict) -> bool:  # the work, and the worker's RUNNING once its tables are recovered
            component = _system(h).get("components", {}).get(AGENT, {})
            me = _system(h).get("workers", {}).get(h["worker_id"], {})
            return component.get("processed", 0) >= 201 and component.get("errors", 0) >= 1 and \
                me.get("status") == "RUNNING"

        health = worker.wait_until(ours_reported, 90, "the health table to show market.trades' work")
        system = _system(health)
        me = system["workers"][health["worker_id"]]
        assert me["status"] == "RUNNING"
        assert {"worker", AGENT, "analysis.candles", "health.heartbeats"} <= set(me["components"])
        trades = system["components"][AGENT]
        assert trades["status"] == "RUNNING" and trades["errors"] == 1
        assert trades["latency_ms"] is not None and trades["latency_ms"]["p99"] >= trades["latency_ms"]["p50"]
        assert 0 < trades["uptime_pct"] <= 100
        assert me["components"]["worker"]["dependencies"] == {
            "broker": "HEALTHY", "schema_registry": "NOT_CONFIGURED", "claude": "NOT_CONFIGURED"}
        assert system["workers"]["ghost"]["status"] == "FAILED"
        assert system["status"] == "FAILED"  # the whole system is as bad as its worst part
        # the fields /health had before stay
        assert health["status"] == "ok" and health["agents"][AGENT]["processed"] >= 201
        assert health["lifecycle"] == "RUNNING" and health["ready"] is True

        assert http_json(f"{worker.url}/live") == (200, {"live": True, "lifecycle": "RUNNING",
                                                         "worker_id": health["worker_id"]})
        status, body = http_json(f"{worker.url}/ready")
        assert (status, body["ready"]) == (200, True)
        worker_id = health["worker_id"]
        _check_metrics(worker.url)
    finally:
        assert worker.stop(signal.SIGTERM) == 0

    statuses = [r.event for r in read_topic(health_settings, "system.status", idle_timeout=3, until_end=True)
                if isinstance(r, Consumed) and isinstance(r.event, ComponentStatus)]
    mine = [(s.component, s.lifecycle) for s in statuses if s.worker_id == worker_id]
    assert ("worker", Lifecycle.STARTING) in mine
    assert ("worker", Lifecycle.RUNNING) in mine
    assert mine[-1] == (mine[-1][0], Lifecycle.STOPPED), "a clean stop is announced"
    assert (AGENT, Lifecycle.STOPPED) in mine


def _check_metrics(url: str) -> None:
    """/metrics in Prometheus format with what an operator graphs (the candle rows are
    written at the fold's next checkpoint: wait for them)."""
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        if samples.get(("ticktide_table_keys", (("table", "candles"),))) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    families = {family.name: family for family in text_string_to_metric_families(text)}
    # Prometheus' conventions: the process and runtime metrics as the default registry has them
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds", "python_info",
            "python_gc_collections"} <= set(families)
    assert value("process_resident_memory_bytes") > 0
    # one value per label: no comma-joined lists (a topic list was one label value)
    joined = {(name, labels) for name, labels in samples if any("," in v for _, v in labels)}
    assert joined == set()
    # each event counted once: by agent in ticktide_events_processed_total; what an agent reads,
    # one series per topic
    assert "ticktide_events_in" not in families
    assert value("ticktide_events_processed_total", agent=AGENT) == 201
    assert value("ticktide_agent_input_info", agent=AGENT, topic="market.trades") == 1
    assert value("ticktide_deadletters_total", agent=AGENT, reason="undecodable") == 1
    # a histogram's _count counts what it is named for: every trade folded, none sampled
    assert value("ticktide_processing_latency_seconds_count", agent=AGENT) == 200
    assert value("ticktide_processing_latency_seconds_bucket", agent=AGENT, le="+Inf") == 200
    # the cache as two counters; the breaker one 0/1 series per state, like the lifecycle
    assert families["ticktide_enrichment_cache_hits"].type == "counter"
    assert families["ticktide_enrichment_cache_lookups"].type == "counter"
    assert "ticktide_enrichment_cache_hit_ratio" not in families
    assert {state: value("ticktide_enrichment_breaker_state", state=state)
            for state in ("closed", "half_open", "open")} == {"closed": 1, "half_open": 0, "open": 0}
    assert value("ticktide_table_keys", table="candles") == 4  # BTCUSDT, ETHUSDT + their partitions' progress rows
    assert value("ticktide_worker_ready") == 1
    assert value("ticktide_worker_lifecycle", state="running") == 1
    assert value("ticktide_recovery_remaining_records", kind="active") == 0
    lagging = [dict(labels) for name, labels in samples if name == "ticktide_consumer_lag_records"]
    candle_input = [x["partition"] for x in lagging if x["topic"] == "market.trades"]
    assert sorted(candle_input) == ["0", "1", "2", "3"]  # a lag figure for each partition of the candle input
