"""Operational tools cannot loop or misfire (issue 10 point 6): reads stop at the end
offsets seen at their start however busy the topic, and `ticktide dlq replay` re-sends only
to this app's catalog topics, once, unless told --force."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.records import DeadLetter, utc_now
from streams import dlq
from streams.admin import end_offsets
from streams.codec import AvroCodec
from streams.producer import EventProducer
from streams.ranges import read_all
from streams.registry import make_registry
from streams.settings import Settings
from tests.factories import T0, make_trade
from tests.harness import run_cli

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
        "internal": _letter(f"{settings.app_id}-market.trade_batches", _trade(settings, "BTCUSDT")),
        "folded": _letter("market.trades", _trade(settings, "SOLUSDT"), reason="processing_failed",
                          agent="trading.marks"),
        "wrong_type": _letter("trading.commands", codec.encode(_letter("x", None)), agent="trading.ledger",
                              reason="processing_failed"),
    }
    with EventProducer(settings) as producer:
        for letter in letters.values():
            producer.send("system.deadletter", letter)
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
    assert "1 dead letters re-sent" in first.stdout and _records(settings, "market.trades") == 1

    again = run_cli("dlq", "replay", ids["ok"], settings=settings)
    assert again.returncode == 1 and "already re-sent at" in again.stderr and "--force" in again.stderr
    assert _records(settings, "market.trades") == 1

    forced = run_cli("dlq", "replay", ids["ok"], "--force", settings=settings)
    assert forced.returncode == 0, forced.stderr
    assert _records(settings, "market.trades") == 2

    every = run_cli("dlq", "replay", "--all", settings=settings)
    assert every.returncode == 1
    assert f"re-sending {ids['ok2']} -> market.trades" in every.stdout and "1 dead letters re-sent" in every.stdout
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
