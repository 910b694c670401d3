"""Backtest parity: recorded Binance trades traded live (enriched through the stand-in
Messages API with a fault mix), once for the module; then

* the analysis topics replayed one after the other into app ``bt``: the same enrichments
  (Claude's answers and live's fallbacks, same ids and values), signals and orders;
* market.trades replayed into app ``bt2`` at max speed, the backtest a quant runs: the
  isolated instance folds everything again (candles, indicators, anomalies, enrichments
  from the response log, signals, orders, marks, fills, positions) and ``ticktide parity``
  over every kind says equal, with orders that filled.

Neither replay makes a new Messages API request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.records import (
    Enrichment,
    EnrichmentSource,
    IndicatorSnapshot,
    OrderFilled,
    PlaceOrder,
    PositionChanged,
    TradeSignal,
)
from streams.kafka.admin import create_topics, end_offsets
from streams.kafka.consumer import Consumed, read_topic
from streams.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import (
    DATA,
    WorkerProcess,
    free_port,
    run_cli,
    settings_for,
    start_broker,
    start_worker,
    stop_broker,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("backtest_parity")]  # one live run for both
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


def _replay(settings: Settings, topic: str, app: str = APP) -> str:
    done = run_cli("replay", "--topic", topic, "--into", app, settings=settings, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"into {app}.{topic}" in done.stdout
    return done.stdout


def _isolated(settings: Settings, app: str, root: Path) -> Settings:
    return settings.model_copy(update={"app_id": app, "topic_prefix": f"{app}.", "data_dir": root / f"{app}-data",
                                       "web_port": free_port()})


@dataclass(frozen=True)
class Live:
    """The live run the module's tests replay: its settings, the stand-in API, what it
    published, and the trades backtest started as soon as live settled (replay's output
    and its worker), so that it runs while the other test does."""

    settings: Settings
    fake: FakeAnthropic
    root: Path
    enrichments: dict[str, Enrichment]
    signals: dict[str, TradeSignal]
    calls: int
    backtest: Future[tuple[str, WorkerProcess]]


TRADES_APP = "bt2"


def _start_backtest(settings: Settings, fake: FakeAnthropic, root: Path) -> tuple[str, WorkerProcess]:
    """market.trades replayed into TRADES_APP (the whole recording, at max speed), then its
    worker started as replay says: with TICKTIDE_IDLE_CLOSE_ALL=true (the copied trades end)."""
    printed = _replay(settings, "market.trades", TRADES_APP)
    isolated = _isolated(settings, TRADES_APP, root)
    return printed, start_worker(isolated, root / f"{TRADES_APP}.log", TICKTIDE_IDLE_CLOSE_ALL="true",
                                 **_enrichment_env(fake))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The recording produced, then traded by one live worker until everything settled (once:
    it costs most of the module's time)."""
    root = tmp_path_factory.mktemp("parity")
    broker = start_broker(root / "broker")
    try:
        with FakeAnthropic() as fake:
            settings = settings_for(broker, root, windows="1s,1m", grace_s=0.5, trading_interval="1s",
                                    trading_account="paper-bt", order_quantity=Decimal("0.001"))
            create_topics(settings)
            fake.mix(FAULTS, seed=13)
            fake.state.slow_s = 5.0  # past the deadline: the fallback, with reason "deadline"
            produced = run_cli("produce", "market.trades", "--file", str(REAL), "--format", "binance-ws",
                               settings=settings, timeout=300)
            assert produced.returncode == 0, produced.stderr
            live_worker = start_worker(settings, root / "live.log", **_enrichment_env(fake))
            try:
                def live_done() -> bool:
                    snapshots = _events(settings, "analysis.indicators", IndicatorSnapshot)
                    subjects = {s.envelope.event_id for s in snapshots.values() if s.interval == "1m"}
                    subjects |= {a for s in snapshots.values() for a in s.anomaly_ids}
                    enriched = {e.subject_event_id for e in _events(settings, "analysis.enrichments",
                                                                    Enrichment).values()}
                    return bool(subjects) and subjects <= enriched
                _settled(settings, ["market.candles", "analysis.enrichments", "trading.signals",
                                    "trading.commands", "trading.events"], live_done)
            finally:
                live_worker.discard()
            with ThreadPoolExecutor(1) as pool:
                backtest = pool.submit(_start_backtest, settings, fake, root)
                try:
                    yield Live(settings, fake, root, _events(settings, "analysis.enrichments", Enrichment),
                               _events(settings, "trading.signals", TradeSignal), fake.calls, backtest)
                finally:
                    if backtest.exception() is None:
                        backtest.result()[1].discard()
    finally:
        stop_broker(broker)


@pytest.mark.timeout(900)
def test_a_replay_one_topic_after_another_gives_what_live_gave_with_no_new_call(live: Live) -> None:
    settings, fake, live_enrichments, live_signals = live.settings, live.fake, live.enrichments, live.signals
    sources = {e.source for e in live_enrichments.values()}
    assert {EnrichmentSource.CLAUDE, EnrichmentSource.FALLBACK} <= sources, sources  # the faults bit
    assert live_signals, "the recorded minutes should cross the EMAs"
    calls = live.calls

    # the replayed instance runs while the topics arrive, one after the other
    isolated = _isolated(settings, APP, live.root)
    _replay(settings, "analysis.indicators")  # creates bt's topics and copies the response log
    bt_worker: WorkerProcess = start_worker(isolated, live.root / "bt.log", **_enrichment_env(fake))
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
    for event_id, was in live_enrichments.items():
        again = replayed[event_id]
        assert (again.regime, again.sentiment, again.risk_flags, again.confidence, again.rationale,
                again.model) == (was.regime, was.sentiment, was.risk_flags, was.confidence,
                                 was.rationale, was.model)
        if was.source is EnrichmentSource.FALLBACK:  # live's fallbacks stay fallbacks, with their reason
            assert again.source is EnrichmentSource.FALLBACK and again.fallback_reason == was.fallback_reason
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



@pytest.mark.timeout(600)
def test_a_backtest_of_the_recorded_trades_gives_every_kind_live_gave_with_no_new_call(live: Live) -> None:
    settings, fake = live.settings, live.fake
    live_fills = _events(settings, "trading.events", OrderFilled)
    assert live_fills, "live should fill orders against the recording's marks"
    live_positions = _events(settings, "trading.events", PositionChanged)

    printed, worker = live.backtest.result(timeout=300)  # replayed and started when live settled
    assert f"TICKTIDE_IDLE_CLOSE_ALL=true ticktide worker --app {TRADES_APP}" in printed

    def caught_up() -> bool:
        return (len(_events(settings, f"{TRADES_APP}.analysis.enrichments", Enrichment)) >= len(live.enrichments)
                and len(_events(settings, f"{TRADES_APP}.trading.signals", TradeSignal)) >= len(live.signals)
                and len(_events(settings, f"{TRADES_APP}.trading.events", OrderFilled)) >= len(live_fills))
    _settled(settings, [f"{TRADES_APP}.{t}" for t in ("market.candles", "analysis.enrichments",
                                                       "trading.commands", "trading.events")], caught_up)
    worker.discard()
    assert fake.calls == live.calls  # every enrichment came from the response log

    report = run_cli("parity", "--app", TRADES_APP, settings=settings, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    lines = report.stdout.splitlines()
    for kind in ("candles", "indicators", "anomalies", "enrichments", "signals", "orders", "order_events"):
        assert any(line.startswith(f"{kind}: equal (live ") for line in lines), (kind, report.stdout)
    assert f"fills: equal (live {len(live_fills)}, {TRADES_APP} {len(live_fills)} events)" in report.stdout
    assert (f"positions: equal (live {len(live_positions)}, {TRADES_APP} {len(live_positions)} events)"
            in report.stdout)
    assert report.stdout.strip().endswith("parity: equal")
