"""The `ticktide` CLI as a user runs it, against the real embedded broker."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from streams.kafka.catalog import CATALOG
from streams.settings import Settings
from tests.harness import DATA, REPO, BrokerUnderTest, cli_env, run_cli, settings_for

BTC_CSV = DATA / "binance_usdm_BTCUSDT_20240718-20240719.trades.csv.gz"
ETH_CSV = DATA / "binance_usdm_ETHUSDT_20240718-20240719.trades.csv.gz"
WS_JSONL = DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz"


def _csv_rows(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt") as handle:
        return list(csv.reader(handle))


def _consume(settings: Settings, topic: str = "market.trades", *extra: str) -> list[dict]:
    result = run_cli("consume", topic, "--timeout", "3", *extra, settings=settings)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("broker", "worker", "topics", "produce", "consume", "dev", "command"):
        assert command in result.stdout


def test_topics_create_is_idempotent_and_describe_shows_true_end_offsets(
        isolated_broker: BrokerUnderTest, tmp_path: Path) -> None:
    settings = settings_for(isolated_broker, tmp_path)
    first = run_cli("topics", "create", settings=settings)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == len(CATALOG)
    again = run_cli("topics", "create", settings=settings)
    assert again.stdout.count("exists") == len(CATALOG) and "created" not in again.stdout

    listed = run_cli("topics", "list", settings=settings)
    assert "* market.trades  (4 partitions)" in listed.stdout

    produced = run_cli("produce", "market.trades", "--file", str(BTC_CSV), "--format",
                       "binance-trades", "--symbol", "BTCUSDT", settings=settings)
    assert produced.returncode == 0, produced.stderr
    described = run_cli("topics", "describe", "market.trades", settings=settings)
    total = len(_csv_rows(BTC_CSV))
    # One symbol = one key = one partition: its end offset is the whole file.
    assert f"{total} records" in described.stdout
    assert str(total) in described.stdout.split("records")[1]


def test_binance_csv_round_trips_exactly_in_order(stack_settings: Settings) -> None:
    for path, symbol in ((BTC_CSV, "BTCUSDT"), (ETH_CSV, "ETHUSDT")):
        result = run_cli("produce", "market.trades", "--file", str(path), "--format",
                         "binance-trades", "--symbol", symbol, settings=stack_settings)
        assert result.returncode == 0, result.stderr
        rows = len(_csv_rows(path))
        assert f"sent {rows} rows, rejected 0" in result.stderr

    events = _consume(stack_settings)
    by_symbol: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_symbol[event["symbol"]].append(event)
    for path, symbol in ((BTC_CSV, "BTCUSDT"), (ETH_CSV, "ETHUSDT")):
        rows = _csv_rows(path)
        got = by_symbol[symbol]
        assert len(got) == len(rows)
        for row, event in zip(rows, got, strict=True):
            trade_id, price, qty, _quote, _time_ms, buyer_maker = row[:6]
            assert event["trade_id"] == int(trade_id)
            assert Decimal(event["price"]) == Decimal(price)
            assert Decimal(event["size"]) == Decimal(qty)
            assert event["taker_side"] == ("SELL" if buyer_maker.lower() == "true" else "BUY")
            assert event["trade_time"].startswith("2024-07-1")
            assert event["envelope"]["event_type"] == "Trade"
            assert event["envelope"]["schema_version"] == 2
        ms = [int(r[4]) for r in rows[:3]]
        from streams.kafka.json_form import parse_time

        assert [int(parse_time(e["trade_time"]).timestamp() * 1000) for e in got[:3]] == ms


def test_websocket_recording_produces_both_symbols(stack_settings: Settings) -> None:
    result = run_cli("produce", "market.trades", "--file", str(WS_JSONL), "--format", "binance-ws",
                     settings=stack_settings)
    assert result.returncode == 0, result.stderr
    events = _consume(stack_settings, "market.trades", "--limit", "100000")
    counts = defaultdict(int)
    for event in events:
        counts[event["symbol"]] += 1
    assert counts == {"BTCUSDT": len(_csv_rows(BTC_CSV)), "ETHUSDT": len(_csv_rows(ETH_CSV))}
    assert {e["trade_type"] for e in events} == {"MARKET"}  # Binance's X field is kept


def test_bad_rows_stop_the_file_and_nothing_is_sent(stack_settings: Settings,
                                                    tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "1,64000.1,0.01,640.001,1721347200000,true\n"
        "2,abc,0.01,1,1721347200001,false\n"
        "3,64000.2,-1,1,1721347200002,false\n"
        "4,64000.3,0.02,1,1721347200003,true\n"
    )
    result = run_cli("produce", "market.trades", "--file", str(bad), "--format", "binance-trades",
                     "--symbol", "BTCUSDT", settings=stack_settings)
    assert result.returncode == 1
    assert f"{bad}:2:" in result.stderr and "price" in result.stderr
    assert f"{bad}:3:" in result.stderr and "size" in result.stderr
    assert "nothing sent" in result.stderr
    assert _consume(stack_settings) == []

    rejects = tmp_path / "rejects.jsonl"
    skipped = run_cli("produce", "market.trades", "--file", str(bad), "--format",
                      "binance-trades", "--symbol", "BTCUSDT", "--skip-invalid", "--rejects",
                      str(rejects), settings=stack_settings)
    assert skipped.returncode == 0, skipped.stderr
    assert "sent 2 rows, rejected 2" in skipped.stderr
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["line"] for r in written] == [2, 3]
    assert written[0]["raw"].startswith("2,abc")
    assert [e["trade_id"] for e in _consume(stack_settings)] == [1, 4]


def test_consume_output_feeds_back_into_produce(stack_settings: Settings, tmp_path: Path) -> None:
    run_cli("produce", "market.trades", "--synthetic", "--symbols", "BTCUSDT", "--rate", "500",
            "--duration", "1", "--seed", "7", settings=stack_settings)
    lines = _consume(stack_settings)
    assert len(lines) >= 300
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    result = run_cli("produce", "market.trades", "--file", str(dump), "--format", "jsonl",
                     settings=stack_settings)
    assert result.returncode == 0, result.stderr
    again = _consume(stack_settings)
    assert len(again) == 2 * len(lines)
    # The envelope travels too: the re-produced copies keep their event ids.
    assert {e["envelope"]["event_id"] for e in again} == {e["envelope"]["event_id"] for e in lines}


def test_consume_from_end_sees_only_new_events(stack_settings: Settings) -> None:
    run_cli("produce", "market.trades", "--synthetic", "--rate", "200", "--duration", "0.5",
            settings=stack_settings)
    assert _consume(stack_settings, "market.trades", "--from-end", "--timeout", "1") == []


def test_a_short_timeout_still_prints_every_event_the_topic_holds(stack_settings: Settings) -> None:
    run_cli("produce", "market.trades", "--synthetic", "--rate", "500", "--duration", "0.5", settings=stack_settings)
    held = sorted(map(json.dumps, _consume(stack_settings)))
    # the broker's first answers take longer than 0.05 s: the timeout counts once every partition is read
    assert len(held) > 100 and sorted(map(json.dumps, _consume(stack_settings, "market.trades", "--timeout",
                                                               "0.05"))) == held


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["consume", "market.trades"], {"TICKTIDE_WEB_PORT": "not-a-port"}, "web_port"),
    (["consume", "market.trades", "--broker", "nohostport"], {}, "broker"),
    (["topics", "list"], {"TICKTIDE_PARTITIONS": "0"}, "partitions"),
])
def test_bad_setting_is_one_line_and_exit_code_2(args: list[str], env: dict[str, str],
                                                 needle: str) -> None:
    result = run_cli(*args, **env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert needle in result.stderr


def test_unknown_topic_and_unreachable_broker_are_clear_errors() -> None:
    unknown = run_cli("consume", "market.nope", "--broker", "127.0.0.1:1")
    assert unknown.returncode == 1 and "unknown topic 'market.nope'" in unknown.stderr
    down = run_cli("topics", "create", "--broker", "127.0.0.1:1", timeout=60)
    assert down.returncode == 1
    assert "ticktide broker" in down.stderr or "cannot" in down.stderr


def test_command_sends_a_typed_user_command_and_refuses_a_bad_one_with_one_line(stack_settings: Settings) -> None:
    sent = run_cli("command", "SetRiskLimit", "limit=max_position", "value=0.5", "account=desk-2",
                   "--user", "ann", settings=stack_settings)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("sent SetRiskLimit ")
    legacy = run_cli("command", "kill_switch", "state=on", settings=stack_settings)
    assert legacy.returncode == 0 and legacy.stdout.startswith("sent EngageKillSwitch "), legacy.stderr
    commands = _consume(stack_settings, "user.commands", "--from-beginning")
    limit = next(c for c in commands if c["envelope"]["event_id"] == sent.stdout.split()[-1])
    assert (limit["envelope"]["event_type"], limit["limit"], limit["value"], limit["account"], limit["user"]) == \
        ("SetRiskLimit", "max_position", "0.5", "desk-2", "ann")
    for bad, field in ((["SetRiskLimit", "limit=max_position", "value=1e1000000"], "arguments.value"),
                       (["PauseStrategy", "strategy=nope"], "arguments.strategy"),
                       (["LaunchRocket"], "command"), (["FlattenPosition", "symbol"], "NAME=VALUE")):
        refused = run_cli("command", *bad, settings=stack_settings)
        assert refused.returncode == 1 and field in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert len(_consume(stack_settings, "user.commands", "--from-beginning")) == len(commands)


def test_version_plain_help_and_counts_that_read_right(stack_settings: Settings) -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == "ticktide 0.1.0"
    for command in (["consume", "--help"], ["produce", "--help"], ["replay", "--help"], ["topics", "list", "--help"]):
        shown = run_cli(*command)
        assert shown.returncode == 0 and "<bool>" not in shown.stdout and "<str>" not in shown.stdout, shown.stdout
    assert "[env TICKTIDE_BROKER, default localhost:9092]" in " ".join(run_cli("consume", "--help").stdout.split())
    assert "--by event-time|record-time" in run_cli("replay", "--help").stdout
    listed = run_cli("topics", "list", settings=stack_settings).stdout
    assert "* system.heartbeats  (1 partition)" in listed and "* market.trades  (4 partitions)" in listed


def test_a_reader_that_goes_away_ends_consume_quietly(stack_settings: Settings) -> None:
    run_cli("produce", "market.trades", "--synthetic", "--rate", "500", "--duration", "1", settings=stack_settings)
    piped = subprocess.run(f"{sys.executable} -m streams.cli consume market.trades --timeout 3 | head -1",
                           shell=True, env=cli_env(stack_settings), cwd=REPO, capture_output=True, text=True,
                           timeout=120)
    assert json.loads(piped.stdout)["envelope"]["event_type"] == "Trade"
    assert piped.stderr == ""  # no traceback, no "Exception ignored"


def test_produce_names_the_format_and_the_unreachable_broker_in_one_line() -> None:
    wrong = run_cli("produce", "market.trades", "--file", str(BTC_CSV), "--broker", "127.0.0.1:1")
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    assert "looks like a Binance trades CSV" in wrong.stderr and "--format binance-trades" in wrong.stderr
    down = run_cli("produce", "market.trades", "--file", str(BTC_CSV), "--format", "binance-trades",
                   "--symbol", "BTCUSDT", "--broker", "127.0.0.1:1", timeout=60)
    reading = run_cli("consume", "market.trades", "--broker", "127.0.0.1:1", timeout=60)
    assert down.returncode == reading.returncode == 1
    assert down.stderr == reading.stderr and "cannot reach the broker at 127.0.0.1:1" in down.stderr


def test_a_hostile_trade_on_the_topic_does_not_make_produce_call_a_file_late(
        stack_settings: Settings, tmp_path: Path) -> None:
    """A trade dated 2999 on market.trades is dead-lettered by the worker and moves no clock, so
    it moves none in produce's lateness check either (it made every trade of a file look late)."""
    from streams.kafka.codec import AvroCodec
    from streams.kafka.json_form import event_to_json
    from streams.kafka.producer import EventProducer
    from streams.kafka.registry import registry_for
    from tests.factories import T0, make_trade

    with EventProducer(stack_settings) as producer:
        producer.send_raw("market.trades", b"BTCUSDT", AvroCodec(registry_for(stack_settings)).encode(
            make_trade(symbol="BTCUSDT", trade_time=T0.replace(year=2999))))
    rows = tmp_path / "trades.jsonl"
    rows.write_text(json.dumps(event_to_json(make_trade(symbol="BTCUSDT", trade_id=7, trade_time=T0))) + "\n")
    sent = run_cli("produce", "market.trades", "--file", str(rows), settings=stack_settings)
    assert sent.returncode == 0, sent.stderr
    assert "sent 1" in sent.stdout + sent.stderr and "late" not in sent.stderr, sent.stderr
