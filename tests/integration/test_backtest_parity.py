"""Backtest parity: recorded Binance trades enriched live through the stand-in Messages API
with a fault mix, then the analysis topics replayed one after the other into a new app
id. The replayed instance publishes the same enrichments (Claude's answers and live's
fallbacks, same ids and values), signals and orders, `ticktide parity` says so, and the
stand-in API sees no new request."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.records import Enrichment, EnrichmentSource, IndicatorSnapshot, PlaceOrder, TradeSignal
from streams.devstack.broker import EmbeddedBroker
from streams.kafka.admin import create_topics, end_offsets
from streams.kafka.consumer import Consumed, read_topic
from streams.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import DATA, WorkerProcess, free_port, run_cli, settings_for, start_worker

pytestmark = pytest.mark.integration
REAL = DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz"
APP = "bt"
FAULTS = {"normal": 0.6, "overloaded": 0.1, "server_error": 0.1, "slow": 0.1, "malformed": 0.05, "invalid": 0.05}


def _enrichment_env(fake: FakeAnthropic) -> dict[str, str]:
    return {"TICKTIDE_ANTHROPIC_API_KEY": "test-key", "TICKTIDE_ANTHROPIC_BASE_URL": fake.url,
            "TICKTIDE_ANTHROPIC_TIMEOUT_S": "2", "TICKTIDE_ANTHROPIC_MAX_RETRIES": "0",
            "TICKTIDE_ENRICH_DEADLINE_S": "3", "TICKTIDE_ENRICH_BATCH_WAIT_S": "0.2",
            "TICKTIDE_ENRICH_REQUESTS_PER_MIN": "0", "TICKTIDE_ENRICH_INPUT_TOKENS_PER_MIN": "0",
            "TICKTIDE_ENRICH_OUTPUT_TOKENS_PER_MIN": "0", "TICKTIDE_ENRICH_BREAKER_FAILURES": "3",
            "TICKTIDE_ENRICH_BREAKER_COOLDOWN_S": "1", "TICKTIDE_ENRICH_INPUTS": "anomalies,indicators",
            "TICKTIDE_ENRICH_SNAPSHOT_INTERVAL": "1m", "TICKTIDE_ENRICH_SNAPSHOT_EVERY_S": "0",
            "TICKTIDE_TRADING_ENRICHMENT_WAIT_S": "300"}


def _events(settings: Settings, topic: str, kind: type[Any]) -> dict[str, Any]:
    """Distinct events of a kind on a topic, by id."""
    return {r.event.envelope.event_id: r.event for r in read_topic(settings, topic, idle_timeout=2, until_end=True)
            if isinstance(r, Consumed) and isinstance(r.event, kind)}


def _settled(settings: Settings, topics: list[str], ready: Any, timeout: float = 240, quiet_s: float = 8) -> None:
    """Wait until ``ready()`` holds and the topics have not grown for ``quiet_s`` seconds."""
    deadline = time.monotonic() + timeout
    last: tuple[int, ...] = ()
    since = time.monotonic()
    while time.monotonic() < deadline:
        now = tuple(sum(end_offsets(settings, t)) for t in topics)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s and ready():
            return
        time.sleep(1)
    raise AssertionError(f"{topics} did not settle: {last}")


def _replay(settings: Settings, topic: str) -> None:
    done = run_cli("replay", "--topic", topic, "--into", APP, settings=settings, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"into {APP}.{topic}" in done.stdout


@pytest.mark.timeout(900)
def test_a_replay_one_topic_after_another_gives_what_live_gave_with_no_new_call(
        isolated_broker: EmbeddedBroker, fake: FakeAnthropic, tmp_path: Path) -> None:
    settings = settings_for(isolated_broker, tmp_path, windows="1s,1m", grace_s=0.5, trading_interval="1s",
                            trading_account="paper-bt", order_quantity=Decimal("0.001"))
    create_topics(settings)
    fake.mix(FAULTS, seed=13)
    fake.state.slow_s = 5.0  # past the deadline: the fallback, with reason "deadline"
    produced = run_cli("produce", "market.trades", "--file", str(REAL), "--format", "binance-ws",
                       settings=settings, timeout=300)
    assert produced.returncode == 0, produced.stderr

    live_worker = start_worker(settings, tmp_path / "live.log", **_enrichment_env(fake))
    try:
        def live_done() -> bool:
            snapshots = _events(settings, "analysis.indicators", IndicatorSnapshot)
            subjects = {s.envelope.event_id for s in snapshots.values() if s.interval == "1m"}
            subjects |= {a for s in snapshots.values() for a in s.anomaly_ids}
            enriched = {e.subject_event_id for e in _events(settings, "analysis.enrichments", Enrichment).values()}
            return bool(subjects) and subjects <= enriched
        _settled(settings, ["market.candles", "analysis.enrichments", "trading.signals", "trading.commands"],
                 live_done)
    finally:
        live_worker.discard()
    live_enrichments = _events(settings, "analysis.enrichments", Enrichment)
    live_signals = _events(settings, "trading.signals", TradeSignal)
    sources = {e.source for e in live_enrichments.values()}
    assert {EnrichmentSource.CLAUDE, EnrichmentSource.FALLBACK} <= sources, sources  # the faults bit
    assert live_signals, "the recorded minutes should cross the EMAs"
    calls = fake.calls

    # the replayed instance runs while the topics arrive, one after the other
    isolated = settings.model_copy(update={"app_id": APP, "topic_prefix": f"{APP}.",
                                           "data_dir": tmp_path / "bt-data", "web_port": free_port()})
    _replay(settings, "analysis.indicators")  # creates bt's topics and copies the response log
    bt_worker: WorkerProcess = start_worker(isolated, tmp_path / "bt.log", **_enrichment_env(fake))
    try:
        bt_worker.wait_until(lambda h: h["agents"].get("trading.signals", {}).get("processed", 0) > 0, 120,
                             "the strategy to read the replayed snapshots")
        _replay(settings, "analysis.anomalies")
        _settled(settings, [f"{APP}.analysis.enrichments", f"{APP}.trading.signals", f"{APP}.trading.commands"],
                 lambda: len(_events(settings, f"{APP}.analysis.enrichments", Enrichment)) >= len(live_enrichments)
                 and len(_events(settings, f"{APP}.trading.signals", TradeSignal)) >= len(live_signals))
    finally:
        bt_worker.discard()
    assert fake.calls == calls  # zero new calls to the Messages API

    replayed = _events(settings, f"{APP}.analysis.enrichments", Enrichment)
    assert replayed.keys() == live_enrichments.keys()
    for event_id, live in live_enrichments.items():
        again = replayed[event_id]
        assert (again.regime, again.sentiment, again.risk_flags, again.confidence, again.rationale,
                again.model) == (live.regime, live.sentiment, live.risk_flags, live.confidence,
                                 live.rationale, live.model)
        if live.source is EnrichmentSource.FALLBACK:  # live's fallbacks stay fallbacks, with their reason
            assert again.source is EnrichmentSource.FALLBACK and again.fallback_reason == live.fallback_reason
        else:
            assert again.source is EnrichmentSource.CACHE
    assert _events(settings, f"{APP}.trading.signals", TradeSignal).keys() == live_signals.keys()
    assert (_events(settings, f"{APP}.trading.commands", PlaceOrder).keys()
            == _events(settings, "trading.commands", PlaceOrder).keys())

    report = run_cli("parity", "--app", APP, "--only", "enrichments,signals,orders", settings=settings, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"enrichments: equal (live {len(live_enrichments)}, {APP} {len(live_enrichments)} events)" in report.stdout
    assert report.stdout.strip().endswith("parity: equal")
    print(f"live: {len(live_enrichments)} enrichments "
          f"({sum(e.source is EnrichmentSource.FALLBACK for e in live_enrichments.values())} fallbacks), "
          f"{len(live_signals)} signals, {calls} Messages calls; replay: 0 calls")
    everything = run_cli("parity", "--app", APP, "--only", "candles,signals", settings=settings,
                         timeout=300)  # bt folded no trades: no candles
    assert everything.returncode == 1 and "signals: equal" in everything.stdout
    assert "candles: DIFFERENT at event #0" in everything.stdout and f"  {APP}: (none)" in everything.stdout
