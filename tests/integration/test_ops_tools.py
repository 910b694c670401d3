"""Operational tools cannot loop or misfire (issue 10 point 6): reads stop at the end
offsets seen at their start however busy the topic, and `ticktide dlq replay` re-sends only
to this app's catalog topics, once, unless told --force."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from domain.trading import ledger, ledger_rows
from domain.trading.portfolio import Portfolio
from schemas.files import all_versions
from schemas.records import (
    DeadLetter,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderType,
    Side,
    utc_now,
)
from streams.kafka.admin import create_topics, end_offsets, list_topics
from streams.kafka.catalog import TopicSpec
from streams.kafka.codec import AvroCodec, to_avro
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_all
from streams.kafka.registry import embedded_schema_id, make_registry
from streams.resilience import dlq
from streams.settings import Settings
from tests.factories import T0, make_trade
from tests.harness import BrokerUnderTest, http_json, run_cli, settings_for, start_worker

SECRET = "Sup3r-S3cret-Value"
NUMBER = 918273645546372819


def _letter(source: str, value: bytes | None, *, reason: str = "undecodable", agent: str = "market.trades",
            key: bytes = b"BTCUSDT") -> DeadLetter:
    return DeadLetter(envelope=DeadLetter.envelope_for(event_time=utc_now(), producer="test"),
                      source_topic=source, source_partition=0, source_offset=3, original_key=key,
                      original_value=value, agent=agent, reason=reason, error_type="BadMagicByte",
                      error_message="fixed since", attempt=1)


def _trade(settings: Settings, symbol: str, trade_id: int = 1) -> bytes:
    codec = AvroCodec(make_registry(settings.schema_registry_url), settings.max_record_bytes)
    return codec.encode(make_trade(symbol=symbol, trade_id=trade_id, price=Decimal("3.5"), trade_time=T0))


def _records(settings: Settings, topic: str) -> int:
    return sum(end_offsets(settings, topic))


def test_dlq_replay_sends_only_to_catalog_topics_and_only_once(stack_settings: Settings) -> None:
    settings = stack_settings
    codec = AvroCodec(make_registry(None), settings.max_record_bytes)
    letters = {
        "ok": _letter("market.trades", _trade(settings, "BTCUSDT")),
        "ok2": _letter("market.trades", _trade(settings, "ETHUSDT"), key=b"ETHUSDT"),
        "foreign": _letter("other-team.orders\x1b[2J", _trade(settings, "BTCUSDT")),
        "internal": _letter(f"{settings.app_id}-market.trades-owners", _trade(settings, "BTCUSDT")),
        "folded": _letter("market.trades", _trade(settings, "SOLUSDT"), reason="processing_failed",
                          agent="trading.marks"),
        "wrong_type": _letter("trading.commands", codec.encode(_letter("x", None)), agent="trading.ledger",
                              reason="processing_failed"),
    }
    with EventProducer(settings) as producer:
        for letter in letters.values():  # forged by hand: the producer's own rules would refuse some
            producer.send_raw("system.deadletter", letter.source_topic.encode(), codec.encode(letter))
    where = {x.letter.envelope.event_id: x.id for x in dlq.read_letters(settings)}
    ids = {name: where[letter.envelope.event_id] for name, letter in letters.items()}

    refused = run_cli("dlq", "replay", ids["ok"], ids["foreign"], settings=settings)
    assert refused.returncode == 1
    assert f"refused {ids['foreign']}: its source topic 'other-team.orders\\x1b[2J' is not a topic of this app" \
        in refused.stderr
    assert "\x1b" not in refused.stderr + refused.stdout  # a forged name cannot drive the terminal
    assert "nothing re-sent" in refused.stderr and _records(settings, "market.trades") == 0

    first = run_cli("dlq", "replay", ids["ok"], settings=settings)
    assert first.returncode == 0, first.stderr
    assert "1 dead letter re-sent" in first.stdout and _records(settings, "market.trades") == 1

    again = run_cli("dlq", "replay", ids["ok"], settings=settings)
    assert again.returncode == 1 and "already re-sent at" in again.stderr and "--force" in again.stderr
    assert _records(settings, "market.trades") == 1

    forced = run_cli("dlq", "replay", ids["ok"], "--force", settings=settings)
    assert forced.returncode == 0, forced.stderr
    assert _records(settings, "market.trades") == 2

    every = run_cli("dlq", "replay", "--all", settings=settings)
    assert every.returncode == 1
    assert f"re-sending {ids['ok2']} -> market.trades" in every.stdout and "1 dead letter re-sent" in every.stdout
    assert f"refused {ids['internal']}: its source topic" in every.stderr
    assert f"refused {ids['folded']}: a market.trades letter of agent 'trading.marks'" in every.stderr
    assert "may already be in the candles" in every.stderr
    assert f"refused {ids['wrong_type']}: it holds a DeadLetter, which trading.commands does not carry" \
        in every.stderr
    assert f"refused {ids['ok']}: it was already re-sent" in every.stderr
    assert _records(settings, "market.trades") == 3 and _records(settings, "trading.commands") == 0


@pytest.mark.parametrize("command", [("topics", "list"), ("worker",)])
def test_the_cli_prints_one_line_without_the_secret_and_exits_2(tmp_path: Path, command: tuple[str, ...]) -> None:
    config = tmp_path / "ticktide.toml"
    config.write_text(f'sasl_password = ["{SECRET}"]\nanthropic_api_key = {NUMBER}\n')
    done = run_cli(*command, TICKTIDE_CONFIG=str(config), TICKTIDE_API_TOKEN=SECRET + "-token",
                   TICKTIDE_SECURITY_PROTOCOL="SASL_SSL", timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("ticktide: invalid setting ") and done.stderr.count("\n") == 1
    assert SECRET not in done.stdout + done.stderr and str(NUMBER) not in done.stdout + done.stderr


def test_reads_end_while_producers_keep_writing(stack_settings: Settings) -> None:
    settings = stack_settings
    with EventProducer(settings) as producer:
        for n in range(20):
            producer.send("system.deadletter", _letter("market.trades", _trade(settings, "BTCUSDT", n)))
            producer.send("market.trades", make_trade(symbol="BTCUSDT", trade_id=n, trade_time=T0))
    stop = threading.Event()
    written = [0]

    def keep_writing() -> None:
        with EventProducer(settings) as producer:
            while not stop.is_set():
                producer.send("system.deadletter", _letter("market.trades", _trade(settings, "ETHUSDT")))
                producer.send("market.trades", make_trade(symbol="ETHUSDT", trade_id=written[0], trade_time=T0))
                producer.flush()
                written[0] += 1
                time.sleep(0.05)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        while written[0] < 3:
            time.sleep(0.05)
        before = _records(settings, "system.deadletter")
        read = sum(1 for _ in read_all(settings, "system.deadletter"))
        after = _records(settings, "system.deadletter")
        assert before <= read <= after

        listed = run_cli("dlq", "list", "--json", settings=settings)
        assert listed.returncode == 0, listed.stderr
        more = written[0] + 2  # letters written after the command ended, which it cannot have listed
        while written[0] < more:
            time.sleep(0.05)
        assert 20 <= len(listed.stdout.splitlines()) < _records(settings, "system.deadletter")

        rebuilt = run_cli("rebuild", "candles", settings=settings)
        assert rebuilt.returncode in (0, 1) and "Traceback" not in rebuilt.stderr, rebuilt.stderr
        assert "checksum" in rebuilt.stdout
    finally:
        stop.set()
        writer.join()


def test_the_retry_agent_works_with_a_topic_prefix_and_bounded_waits(isolated_broker: BrokerUnderTest,
                                                                      tmp_path: Path) -> None:
    settings = settings_for(isolated_broker, tmp_path, topic_prefix="blue.", retry_backoff_s=0.2)
    create_topics(settings)
    codec = AvroCodec(make_registry(None), settings.max_record_bytes * 2 + 65536)
    years_ahead = utc_now() + timedelta(days=3650)

    def retry_letter(source: str, symbol: str, when: datetime | None = None) -> bytes:
        letter = _letter(source, _trade(settings, symbol), reason="transient", key=symbol.encode())
        if when is not None:
            letter = replace(letter, envelope=replace(letter.envelope, event_time=when))
        return codec.encode(letter)

    worker = start_worker(settings, tmp_path / "worker.log", TICKTIDE_RETRY_BACKOFF_S="0.2")
    try:
        with EventProducer(settings) as producer:  # one key: one partition, in this order
            for value in (retry_letter("blue.market.trades", "SOLUSDT", years_ahead),
                          retry_letter("market.trades", "ADAUSDT"),  # another instance's topic
                          retry_letter("blue.market.trades", "XRPUSDT", utc_now() - timedelta(days=3650))):
                producer.send_raw("blue.system.retry", b"blue.market.trades", value)
        health = worker.wait_until(lambda h: h["agents"].get("market.trades", {}).get("processed", 0) == 2
                                   and h["deadletters"]["total"] == 1, 90, "both good trades to be re-sent")
        assert health["agents"]["system.retry"]["processed"] == 3
        for symbol in ("SOLUSDT", "XRPUSDT"):
            status, body = http_json(f"{worker.url}/candles/{symbol}")
            assert status == 200 and body["live"][0]["trade_count"] == 1
        assert http_json(f"{worker.url}/candles/ADAUSDT")[0] == 404
        letters = [x.letter for x in dlq.read_letters(settings)]
        assert [(x.agent, x.source_topic) for x in letters] == [("system.retry", "blue.system.retry")]
        assert "'market.trades' is not a topic of this app" in letters[0].error_message
        assert "market.trades" not in list_topics(settings)  # nothing was sent outside the prefix
    finally:
        worker.stop()


def test_an_untouched_account_rebuilds_equal_and_no_secret_shows(isolated_broker: BrokerUnderTest,
                                                                 tmp_path: Path) -> None:
    secrets = {"TICKTIDE_API_TOKEN": "tok-" + SECRET, "TICKTIDE_ANTHROPIC_API_KEY": "sk-ant-" + SECRET,
               "TICKTIDE_SASL_PASSWORD": "pw-" + SECRET}
    settings = settings_for(isolated_broker, tmp_path)
    create_topics(settings)
    worker = start_worker(settings, tmp_path / "worker.log", TICKTIDE_ANTHROPIC_BASE_URL="http://127.0.0.1:9",
                          **secrets)
    try:
        with EventProducer(settings) as producer:
            for n in range(3):
                producer.send("market.trades", make_trade(symbol="BTCUSDT", trade_id=n, trade_time=T0))
        account = settings.trading_account
        deadline = time.monotonic() + 90
        while http_json(f"{worker.url}/portfolio/{account}")[0] != 200:  # the row, from the first mark
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(0.5)
        assert _records(settings, "trading.events") == 0  # no trading event yet

        rebuilt = run_cli("rebuild", "portfolio", settings=settings)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert f"portfolio {account}: equal" in rebuilt.stdout

        health = urllib.request.urlopen(f"{worker.url}/health", timeout=5).read().decode()
        metrics = urllib.request.urlopen(f"{worker.url}/metrics", timeout=5).read().decode()
        listed = run_cli("topics", "list", settings=settings, **secrets)
        assert listed.returncode == 0, listed.stderr
        for shown in (health, metrics, worker.tail(10_000), listed.stdout + listed.stderr):
            assert SECRET not in shown
    finally:
        worker.stop()


def _written_by_v1(event: OrderPlaced) -> bytes:
    """An OrderPlaced as the ledger before PlaceOrder/OrderPlaced v2 wrote it (no strategy)."""
    v1 = all_versions()["ticktide.trading.OrderPlaced"][0]
    fields = to_avro(replace(event, envelope=replace(event.envelope, schema_version=1)))
    del fields["strategy"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(v1.schema), fields)
    return b"\x00" + embedded_schema_id(v1.schema).to_bytes(4, "big") + body.getvalue()


def test_rebuild_over_a_topic_written_before_the_split_of_order_rejected_is_equal(stack_settings: Settings) -> None:
    """An upgrade: trading.events and the live table written by the ledger before OrderRejected
    became OrderDenied/OrderExpired/OrderCanceled still rebuild equal, and a real difference
    is still found."""
    settings, account = stack_settings, "old-desk"
    codec = AvroCodec(make_registry(None))

    def envelope(cls: type[Any], n: int, producer: str = "agent.trading") -> Any:
        return cls.envelope_for(event_time=T0 + timedelta(seconds=n), producer=producer, event_id=f"old-{n}")

    placed = [OrderPlaced(envelope=envelope(OrderPlaced, n, "strategy.ema_cross"), order_id=f"{account}:o{n}",
                          account=account, symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET,
                          quantity=Decimal(1)) for n in range(3)]
    filled = OrderFilled(envelope=envelope(OrderFilled, 10), order_id=f"{account}:o0", account=account,
                         symbol="BTCUSDT", side=Side.BUY, fill_id="f0", fill_quantity=Decimal(1),
                         fill_price=Decimal(100), fee=Decimal("0.1"), remaining_quantity=Decimal(0))
    rejected = [OrderRejected(envelope=envelope(OrderRejected, 20 + n), order_id=f"{account}:o{n}", account=account,
                              symbol="BTCUSDT", reason_code=code, reason=code)
                for n, code in ((1, "expired"), (2, "kill_switch"), (3, "max_position"))]
    old_events = [_written_by_v1(p) for p in placed] + [codec.encode(e) for e in (filled, *rejected)]
    # the row the old ledger wrote for these events: REJECTED orders, the ingest time kept
    state = ledger.fold(Portfolio.open(account, settings.initial_cash), [codec.decode(v) for v in old_events])
    row = ledger_rows.to_row(state)
    for order in row["orders"].values():
        order["placed_wall_us"] = order["placed_us"]
        order["status"] = "REJECTED" if order["status"] not in ("OPEN", "FILLED") else order["status"]
    assert state.orders[f"{account}:o0"].strategy == "ema_cross"
    changelog = f"{settings.app_id}-portfolio-changelog"
    create_topics(settings, (TopicSpec(changelog, (), "account", "the portfolio table's changelog"),))
    with EventProducer(settings) as producer:
        for value in old_events:
            producer.send_raw("trading.events", account.encode(), value)
        producer.send_raw(changelog, json.dumps(account).encode(),
                          json.dumps({"portfolio": row, "prices": {}, "input": [0, 9]}).encode())
    rebuilt = run_cli("rebuild", "portfolio", settings=settings)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"portfolio {account}: equal" in rebuilt.stdout
    statuses = {k: o.status.value for k, o in state.orders.items()}
    assert statuses == {f"{account}:o0": "FILLED", f"{account}:o1": "EXPIRED", f"{account}:o2": "CANCELED",
                        f"{account}:o3": "DENIED"}

    row["cash"] = str(Decimal(row["cash"]) + 1)  # a live row that is really different
    with EventProducer(settings) as producer:
        producer.send_raw(changelog, json.dumps(account).encode(),
                          json.dumps({"portfolio": row, "prices": {}, "input": [0, 9]}).encode())
    differs = run_cli("rebuild", "portfolio", settings=settings)
    assert differs.returncode == 1 and f"portfolio {account}: different: cash" in differs.stdout


def test_rebuild_candles_compares_v1_candles_on_what_they_say(stack_settings: Settings) -> None:
    """market.candles written before Candle v2 (no taker buy quote, no close time) rebuilds
    equal; a v1 candle that says something else is still a difference."""
    from domain.clock import to_micros
    from domain.market.bars import Tick
    from domain.market.candles import CandleFold, ClosedCandle, SymbolCandles, candle_record

    settings = stack_settings
    trades = [make_trade(symbol=symbol, trade_id=n, price=Decimal("100") + n, size=Decimal("0.5"),
                         trade_time=T0 + timedelta(seconds=20 * n))
              for n in range(12) for symbol in ("BTCUSDT", "ETHUSDT")]
    fold = CandleFold(settings.window_specs, int(settings.grace_s * 1_000_000))
    states: dict[str, SymbolCandles] = {}
    closed: list[ClosedCandle] = []
    for trade in trades:
        state = states.setdefault(trade.symbol, SymbolCandles(trade.symbol))
        tick = Tick(trade.symbol, trade.trade_id, to_micros(trade.trade_time), int(trade.price * 10**18),
                    int(trade.size * 10**18), trade.taker_side is Side.BUY)
        closed += [c for c in fold.evolve(state, tick)[1] if isinstance(c, ClosedCandle)]
    assert {c.symbol for c in closed} == {"BTCUSDT", "ETHUSDT"}
    v1 = all_versions()["ticktide.analysis.Candle"][0]
    parsed, header = fastavro.parse_schema(v1.schema), b"\x00" + embedded_schema_id(v1.schema).to_bytes(4, "big")
    with EventProducer(settings) as producer:
        for trade in trades:
            producer.send("market.trades", trade)
        for candle in closed:
            record = candle_record(candle, "agent.market", utc_now())
            old = to_avro(replace(record, envelope=replace(record.envelope, schema_version=1)))
            del old["taker_buy_quote_volume"], old["close_time"]
            if candle.symbol == "ETHUSDT" and candle.interval == "1m":
                old["volume"] += Decimal(1)  # a candle that disagrees with the trades
            body = io.BytesIO()
            fastavro.schemaless_writer(body, parsed, old)
            producer.send_raw("market.candles", candle.symbol.encode(), header + body.getvalue())

    rebuilt = run_cli("rebuild", "candles", settings=settings)
    assert "candles BTCUSDT: equal" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
    assert "candles ETHUSDT: different" in rebuilt.stdout and rebuilt.returncode == 1
