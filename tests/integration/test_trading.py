"""Paper trading end to end on the embedded broker: a synthetic feed -> 1 s candles ->
indicators -> EMA-cross signals -> orders -> fills -> portfolio, visible over HTTP, and
`ticktide rebuild portfolio` agreeing with the live table, also after a SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from schemas.records import (
    CommandAcknowledged,
    IndicatorSnapshot,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderType,
    PauseStrategy,
    PlaceOrder,
    Side,
    StrategyProgressed,
    TradeSignal,
)
from streams.ingest import synthetic_trades
from streams.kafka.admin import create_topics
from streams.kafka.codec import AvroCodec
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_all
from streams.kafka.registry import make_registry
from streams.settings import Settings
from tests.harness import (
    REPO,
    BrokerUnderTest,
    WorkerProcess,
    cli_env,
    free_port,
    http_json,
    run_cli,
    settings_for,
    start_worker,
)

START = datetime(2024, 7, 19, tzinfo=UTC)  # old timestamps: event time, not wall clock
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
ACCOUNT = "paper-e2e"
API_TOKEN = "s3cret-token-for-tests"


def trading_settings(broker: BrokerUnderTest, tmp_path: Path, **extra: Any) -> Settings:
    """1 s candles and a strategy on them, small orders, limits that bind sometimes; the
    ledger waits 4 s for a quiet strategy (what waits at the end of the feed, and an order
    dated after it, is decided sooner: nothing here compares with another run)."""
    settings = settings_for(
        broker, tmp_path, windows="1s", grace_s=0.5, trading_interval="1s", trading_account=ACCOUNT,
        order_quantity=Decimal("0.01"), max_position=Decimal("0.02"), fill_participation=Decimal("0.5"),
        **{"order_timeout_s": 8, "ledger_wait_s": 4, **extra})
    create_topics(settings)
    return settings


def feed(seconds: int, seed: int = 7) -> list[Any]:
    trades = synthetic_trades(SYMBOLS, seed=seed, start=START, rate=40, out_of_order_share=0)
    return list(islice(trades, seconds * 40))


def produce(settings: Settings, events: list[Any], topic: str = "market.trades") -> None:
    with EventProducer(settings) as producer:
        for event in events:
            producer.send(topic, event)


def collect(settings: Settings, topic: str) -> list[Any]:
    return [r.event for r in read_topic(settings, topic, idle_timeout=3, until_end=True) if isinstance(r, Consumed)]


def wait_for(what: str, check: Any, timeout: float = 150, pause: float = 2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(pause)


def settled_portfolio(worker: WorkerProcess) -> dict[str, Any]:
    """The portfolio once it traded, no order is open and its event count stopped moving."""
    last: list[Any] = [None]

    def stable() -> dict[str, Any] | None:
        status, body = http_json(f"{worker.url}/portfolio/{ACCOUNT}")
        if status != 200 or body["open_orders"] or not body["events"]:  # not settled before it starts
            return None
        seen, last[0] = last[0], body["events"]
        return body if seen == body["events"] else None
    return dict(wait_for("the portfolio to settle", stable, pause=4))


def check_ledger(settings: Settings) -> tuple[list[Any], dict[str, Decimal]]:
    """Trading facts are consistent: every order from a signal, no order over-filled."""
    signals = {s.envelope.event_id: s for s in collect(settings, "trading.signals") if isinstance(s, TradeSignal)}
    events = collect(settings, "trading.events")
    placed = {e.order_id: e for e in events if isinstance(e, OrderPlaced)}
    fills: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for e in events:
        if isinstance(e, OrderFilled):
            fills[e.order_id][e.fill_id] = e.fill_quantity  # a re-emitted fill keeps its id
    assert signals and placed and fills, "signals, orders and fills expected"
    for order_id, order in placed.items():
        assert sum(fills[order_id].values(), Decimal(0)) <= order.quantity, f"{order_id} over-filled"
    commands = {c.envelope.event_id: c for c in collect(settings, "trading.commands") if isinstance(c, PlaceOrder)}
    for order in placed.values():  # lineage: OrderPlaced <- PlaceOrder <- TradeSignal
        assert commands[order.envelope.causation_id].signal_id in signals
    return events, {k: sum(v.values(), Decimal(0)) for k, v in fills.items()}


def test_feed_to_portfolio_then_rebuild_is_equal(isolated_broker: BrokerUnderTest, tmp_path: Path) -> None:
    settings = trading_settings(isolated_broker, tmp_path)
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        produce(settings, feed(240))
        body = settled_portfolio(worker)
        events, filled = check_ledger(settings)
        positions = body["positions"]
        assert positions and all(abs(Decimal(p["quantity"])) <= Decimal("0.02") for p in positions.values())
        assert Decimal(body["fees"]) > 0
        denied = [e for e in events if isinstance(e, OrderDenied)]
        assert {e.reason_code for e in denied} <= {"max_position"}
        assert all(e.remaining_quantity > 0 for e in events if isinstance(e, OrderExpired))
        some_order = next(iter(filled))
        status, order = http_json(f"{worker.url}/orders/{some_order}")
        assert status == 200 and order["status"] == "FILLED" and Decimal(order["filled"]) == filled[some_order]
        status, listed = http_json(f"{worker.url}/signals?symbol=BTCUSDT&limit=3")
        assert status == 200 and 0 < len(listed["signals"]) <= 3
        assert http_json(f"{worker.url}/signals")[0] == 400
        assert post_json(f"{worker.url}/commands", {"command": "EngageKillSwitch"}, token="")[0] == 404  # no token

        produce(settings, [PauseStrategy(
            envelope=PauseStrategy.envelope_for(event_time=START, producer="test", event_id="pause-1"),
            strategy="ema_cross", account=ACCOUNT, user="ann")], "user.commands")
        acks = wait_for("the pause to be acknowledged", lambda: [
            e for e in collect(settings, "trading.events") if isinstance(e, CommandAcknowledged)])
        assert acks[0].accepted and acks[0].command_id == "pause-1" and acks[0].command == "PauseStrategy"
        assert wait_for("the pause in the portfolio", lambda: http_json(
            f"{worker.url}/portfolio/{ACCOUNT}")[1]["controls"]["paused"] == ["ema_cross"])

        # an order no market trade can fill (dated after the feed): once the idle account's clock
        # passes its deadline, the ledger's ExpireOrders request closes it
        held = Decimal(positions.get("BTCUSDT", {}).get("quantity", "0"))
        stuck = PlaceOrder(
            envelope=PlaceOrder.envelope_for(event_time=START.replace(year=2025), producer="test"),
            order_id=f"{ACCOUNT}:stuck", account=ACCOUNT, symbol="BTCUSDT", side=Side.SELL if held > 0 else Side.BUY,
            order_type=OrderType.MARKET, quantity=Decimal("0.01"))
        produce(settings, [stuck], "trading.commands")
        status, order = wait_for("the stuck order to expire", lambda: (
            answer if (answer := http_json(f"{worker.url}/orders/{ACCOUNT}:stuck"))[0] == 200
            and answer[1]["status"] != "OPEN" else None))
        assert order["status"] == "EXPIRED" and order["reason_code"] == "expired"
        expired = [e for e in collect(settings, "trading.events") if isinstance(e, OrderExpired)
                   and e.order_id == f"{ACCOUNT}:stuck"]
        assert len(expired) == 1 and expired[0].remaining_quantity == Decimal("0.01")

        rebuilt = run_cli("rebuild", "portfolio", settings=settings)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert f"portfolio {ACCOUNT}: equal" in rebuilt.stdout and "events/s" in rebuilt.stdout
        candles = run_cli("rebuild", "candles", settings=settings)
        assert candles.returncode == 0, candles.stdout + candles.stderr
        assert "candles BTCUSDT: equal" in candles.stdout and "candles ETHUSDT: equal" in candles.stdout

        why = run_cli("explain", some_order, settings=settings)
        assert why.returncode == 0, why.stderr
        chain = why.stdout
        for step in ("OrderPlaced", "OrderFilled", "PlaceOrder", "TradeSignal", "IndicatorSnapshot", "Candle",
                     "market.trades["):
            assert step in chain, f"{step} missing from:\n{chain}"
        assert chain.index("TradeSignal") < chain.index("IndicatorSnapshot") < chain.index("<- trades")
        unknown = run_cli("explain", "no-such-order", settings=settings)
        assert unknown.returncode == 1 and "no order 'no-such-order'" in unknown.stderr

        # a fact the live ledger never made: the rebuild must notice and fail
        forged = OrderPlaced(
            envelope=OrderPlaced.envelope_for(event_time=START, producer="forger"), order_id="forged",
            account=ACCOUNT, symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(1))
        produce(settings, [forged], "trading.events")
        differs = run_cli("rebuild", "portfolio", settings=settings)
        assert differs.returncode == 1 and f"portfolio {ACCOUNT}: different" in differs.stdout
    finally:
        worker.stop()


@pytest.mark.integration
def test_sigkill_mid_run_then_restart_rebuild_still_equal_and_nothing_filled_twice(
        isolated_broker: BrokerUnderTest, tmp_path: Path) -> None:
    settings = trading_settings(isolated_broker, tmp_path, api_token=API_TOKEN)
    worker = start_worker(settings, tmp_path / "worker-1.log")
    try:
        produce(settings, feed(240, seed=11))
        wait_for("the first fills", lambda: any(isinstance(e, OrderFilled)
                                                for e in collect(settings, "trading.events")), pause=1)
        worker.stop(signal.SIGKILL)
        worker = start_worker(settings, tmp_path / "worker-2.log")
        settled_portfolio(worker)
        check_ledger(settings)

        limit = {"command": "SetRiskLimit", "arguments": {"limit": "max_position", "value": "0.5",
                                                          "account": ACCOUNT}}
        assert post_json(f"{worker.url}/commands", limit, token="wrong")[0] == 401
        status, answer = post_json(f"{worker.url}/commands", limit, token=API_TOKEN)
        assert status == 202
        ack = wait_for("the limit change to be acknowledged", lambda: [
            e for e in collect(settings, "trading.events")
            if isinstance(e, CommandAcknowledged) and e.command_id == answer["command_id"]])[0]
        assert ack.accepted
        assert http_json(f"{worker.url}/portfolio/{ACCOUNT}")[1]["controls"]["limits"] == {"max_position": "0.5"}
        rebuilt = run_cli("rebuild", "portfolio", settings=settings)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert f"portfolio {ACCOUNT}: equal" in rebuilt.stdout
    finally:
        worker.stop()


def post_json(url: str, body: Any, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body.startswith(b"{") else body.decode()


def test_replay_of_a_time_range_into_a_new_app_gives_the_live_signals(
        isolated_broker: BrokerUnderTest, tmp_path: Path) -> None:
    # Indicators alone decide this strategy's signals; the default one also weighs
    # enrichments, which a replay of analysis.indicators alone does not carry.
    settings = trading_settings(isolated_broker, tmp_path, trading_strategy="ema_cross_unfiltered")
    worker = start_worker(settings, tmp_path / "live.log")
    try:
        produce(settings, feed(240, seed=3))
        settled_portfolio(worker)
        inputs = sum(sum(1 for _ in read_all(settings, t)) for t in ("analysis.indicators", "analysis.anomalies",
                                                           "analysis.enrichments"))
        worker.wait_until(lambda h: h["agents"].get("trading.signals", {}).get("processed", 0) >= inputs,
                          120, "the strategy to have seen every snapshot")  # the live side is complete
    finally:
        worker.stop()
    stored = sorted(read_all(settings, "analysis.indicators"), key=lambda r: r.timestamp_ms)
    start_ms, stop_ms = stored[len(stored) // 4].timestamp_ms, stored[3 * len(stored) // 4].timestamp_ms
    replayed = run_cli("replay", "--topic", "analysis.indicators", "--from", _iso(start_ms), "--to", _iso(stop_ms),
                       "--by", "record-time", "--into", "replay1", settings=settings)
    assert replayed.returncode == 0, replayed.stderr
    assert "events/s" in replayed.stdout and "ticktide worker --app replay1 " in replayed.stdout

    # what the live run saw in that range: per partition, records from the first at or after
    # --from up to the first at or after --to; a symbol's first snapshot has no previous one
    in_range = [r for r in stored if start_ms <= r.timestamp_ms < stop_ms]
    snapshots = [e for e in (CODEC.decode(r.value) for r in in_range)
                 if isinstance(e, IndicatorSnapshot) and e.interval == "1s"]
    firsts = {min((s for s in snapshots if s.symbol == symbol), key=lambda s: s.candle_end).envelope.event_id
              for symbol in {s.symbol for s in snapshots}}
    caused_by = {s.envelope.event_id for s in snapshots} - firsts
    live = {_signal(s) for s in collect(settings, "trading.signals") if s.envelope.causation_id in caused_by}
    assert live, "the range should hold some live signals"

    isolated = settings.model_copy(update={"app_id": "replay1", "topic_prefix": "replay1.",
                                           "data_dir": tmp_path / "replay-data", "web_port": free_port()})
    replay_worker = start_worker(isolated, tmp_path / "replay.log")
    try:
        got = wait_for("the replayed signals", lambda: (
            found if len(found := {_signal(s) for s in collect(settings, "replay1.trading.signals")}) >= len(live)
            else None))
    finally:
        replay_worker.stop()
    assert got == live
    assert len(collect(settings, "trading.signals")) >= len(live)  # the live topic is untouched


CODEC = AvroCodec(make_registry(None))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _signal(signal: TradeSignal) -> tuple[Any, ...]:
    return (signal.envelope.event_id, signal.symbol, str(signal.side), signal.strength, signal.reason,
            tuple(signal.cause_ids))


def test_replay_ctrl_c_stops_cleanly_and_says_where(broker: BrokerUnderTest, tmp_path: Path) -> None:
    settings = settings_for(broker, tmp_path)
    create_topics(settings)
    produce(settings, feed(50, seed=5)[:2000])
    create_topics(settings.model_copy(update={"topic_prefix": "ctrlc."}))
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "replay", "--topic", "market.trades", "--from", "0",
         "--speed", "0.0001", "--into", "ctrlc.market.trades"],
        env=cli_env(settings), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    started = ""
    while "replaying" not in started:  # planned and started (a fixed sleep once ended in the CLI's imports)
        line = process.stderr.readline()
        assert line, f"replay ended before it started:\n{started}"
        started += line
    time.sleep(2)  # the first record goes at once, the rest crawl
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    err = started + err
    assert process.returncode == 130, out + err
    assert "stopped (interrupted) at partition@next-offset" in out
    copied = int(out.split("replayed ")[1].split(" of ")[0])
    assert 0 < copied < 2000
    assert len(collect(settings, "ctrlc.market.trades")) == copied  # what it says it copied is there


def forged_progress(symbol: str, at: datetime, account: str = ACCOUNT, strategy: str = "ema_cross") -> Any:
    return StrategyProgressed(envelope=StrategyProgressed.envelope_for(event_time=at, producer="strategy.ema_cross"),
                              account=account, symbol=symbol, strategy=strategy)


@pytest.mark.integration
def test_forged_progress_on_trading_commands_holds_no_order(isolated_broker: BrokerUnderTest, tmp_path: Path) -> None:
    """A broken or hostile producer writes StrategyProgressed records to the account's
    trading.commands partition (its producer string says it is the strategy): an hour old,
    for a symbol nobody trades, from another strategy, for another account. The ledger's
    fallback for a silent strategy is 10 minutes away here, so an order held by them would
    not be placed within the test: every order is decided by the strategy's own progress."""
    settings = trading_settings(isolated_broker, tmp_path, ledger_wait_s=600)
    hour_ago = START - timedelta(hours=1)
    with EventProducer(settings) as producer:
        for record in (forged_progress("DOGEUSDT", hour_ago), forged_progress("ETHUSDT", hour_ago, strategy="other"),
                       forged_progress("BTCUSDT", hour_ago, account="someone-else")):
            producer.send("trading.commands", record, key=ACCOUNT)
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        produce(settings, feed(240))
        produce(settings, [forged_progress("DOGEUSDT", START)], "trading.commands")  # mid-feed as well
        placed = wait_for("orders decided by the strategy's progress", lambda: [
            e for e in collect(settings, "trading.events") if isinstance(e, OrderPlaced | OrderDenied)])
        assert placed and all(e.account == ACCOUNT for e in placed)
    finally:
        worker.stop()
