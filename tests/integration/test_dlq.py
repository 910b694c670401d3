"""Dead letters and retries against a running worker: `ticktide dlq list|show|replay`
and the retry topic sending a record back to its source topic."""

from __future__ import annotations

import json
from decimal import Decimal

from schemas.records import DeadLetter, utc_now
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.kafka.registry import make_registry
from streams.settings import Settings
from tests.factories import T0, make_trade
from tests.harness import WorkerProcess, http_json, run_cli

AGENT = "market.trades"
POISON = b"\x05not a record"


def _letter(value: bytes, key: bytes, *, reason: str, attempt: int = 1) -> DeadLetter:
    return DeadLetter(envelope=DeadLetter.envelope_for(event_time=utc_now(), producer="test"),
                      source_topic="market.trades", source_partition=0, source_offset=7,
                      original_key=key, original_value=value, agent=AGENT, reason=reason,
                      error_type="RuntimeError", error_message="a bug, since fixed", attempt=attempt)


def _trade_bytes(settings: Settings, symbol: str) -> bytes:
    codec = AvroCodec(make_registry(settings.schema_registry_url), settings.max_record_bytes)
    return codec.encode(make_trade(symbol=symbol, trade_id=99, price=Decimal("7.5"), trade_time=T0))


def test_dlq_lists_shows_and_replays_a_fixed_record(stack_settings: Settings, worker: WorkerProcess) -> None:
    with EventProducer(stack_settings) as producer:
        producer.send_raw("market.trades", b"BTCUSDT", POISON)
        producer.send("system.deadletter", _letter(_trade_bytes(stack_settings, "ETHUSDT"), b"ETHUSDT",
                                                   reason="processing_failed"))
    worker.wait_until(lambda h: h["deadletters"]["total"] == 1, 60, "the poison record to be dead-lettered")

    listed = run_cli("dlq", "list", "--json", settings=stack_settings)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["reason"] for r in rows) == ["processing_failed", "undecodable"]
    poison = next(r for r in rows if r["reason"] == "undecodable")
    fixable = next(r for r in rows if r["reason"] == "processing_failed")
    assert poison["source"].startswith("market.trades[") and poison["agent"] == AGENT

    table = run_cli("dlq", "list", "--reason", "undecodable", settings=stack_settings)
    assert "1 dead letter\n" in table.stdout and poison["id"] in table.stdout

    shown = run_cli("dlq", "show", poison["id"], settings=stack_settings)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["error_type"] == "BadMagicByte" and detail["original_decoded"] is None
    assert "BadMagicByte" in detail["original_undecodable"]

    assert http_json(f"{worker.url}/candles/ETHUSDT")[0] == 404
    unsure = run_cli("dlq", "replay", fixable["id"], settings=stack_settings)  # it may be in the candles
    assert unsure.returncode == 1 and "may already be in the candles" in unsure.stderr
    replayed = run_cli("dlq", "replay", fixable["id"], "--force", settings=stack_settings)
    assert replayed.returncode == 0, replayed.stderr
    assert "1 dead letter re-sent" in replayed.stdout
    worker.wait_until(lambda h: h["agents"][AGENT]["processed"] == 2, 60, "the replayed trade to be processed")
    status, body = http_json(f"{worker.url}/candles/ETHUSDT")
    assert status == 200 and body["live"][0]["trade_count"] == 1
    assert worker.health()["deadletters"]["total"] == 1  # the replayed record did not fail again

    missing = run_cli("dlq", "show", "3:12345", settings=stack_settings)
    assert missing.returncode == 1 and "no dead letter 3:12345" in missing.stderr
    bad = run_cli("dlq", "replay", "nonsense", settings=stack_settings)
    assert bad.returncode == 1 and "PARTITION:OFFSET" in bad.stderr


def test_a_record_on_the_retry_topic_goes_back_to_its_source_when_due(
        stack_settings: Settings, worker: WorkerProcess) -> None:
    with EventProducer(stack_settings) as producer:
        producer.send("system.retry", _letter(_trade_bytes(stack_settings, "SOLUSDT"), b"SOLUSDT",
                                              reason="transient"))
    worker.wait_until(lambda h: h["agents"].get(AGENT, {}).get("processed", 0) == 1, 60,
                      "the retried trade to be processed again")
    health = worker.health()
    assert health["agents"]["system.retry"]["processed"] == 1
    assert health["deadletters"]["total"] == 0
    status, body = http_json(f"{worker.url}/candles/SOLUSDT")
    assert status == 200 and body["live"][0]["trade_count"] == 1
