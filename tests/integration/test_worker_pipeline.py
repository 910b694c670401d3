"""A running worker against the real embedded broker: trades in, tickers and dead
letters out, /health and table views answering. The tests share one worker (each with its
own symbols, checking what changed): the module is one xdist group."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from aiokafka.partitioner import murmur2

from schemas.records import DeadLetter, Heartbeat, Trade
from streams.kafka.admin import end_offsets
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_range
from streams.settings import Settings
from tables import names
from tests.factories import T0, make_trade
from tests.harness import WorkerProcess, http_json

pytestmark = pytest.mark.xdist_group("worker_pipeline")

AGENT = "market.trades"
Shared = tuple[Settings, WorkerProcess]


def _trades(n: int, symbols: tuple[str, ...]) -> list[Trade]:
    """n trades, 0.5 s apart in 2024 event time (a replay of old data)."""
    return [make_trade(symbol=symbols[i % len(symbols)], trade_id=1000 + i,
                       price=Decimal("100.25") + i, size=Decimal("0.5"),
                       trade_time=T0 + timedelta(milliseconds=500 * i)) for i in range(n)]


def test_poison_record_goes_to_deadletter_and_good_ones_are_all_processed(shared_worker: Shared) -> None:
    stack_settings, worker = shared_worker
    symbols = ("PSNBTCUSDT", "PSNETHUSDT", "PSNSOLUSDT")
    trades = _trades(300, symbols)
    poison_value = b"\x00\x00\x00\x00\x07 this is not avro"
    before = worker.health()
    processed, letters_before = before["agents"].get(AGENT, {}).get("processed", 0), before["deadletters"]
    with EventProducer(stack_settings) as producer:
        for i, trade in enumerate(trades):
            producer.send("market.trades", trade)
            if i == 150:
                producer.send_raw("market.trades", b"BTCUSDT", poison_value)
                producer.send_raw("market.trades", b"ETHUSDT", b"\x05not even framed")

    health = worker.wait_until(lambda h: h["agents"].get(AGENT, {}).get("processed", 0) >= processed + 302,
                               60, "all 302 records to be handled")
    assert health["deadletters"]["total"] - letters_before["total"] == 2
    reason = f"{AGENT}/undecodable"
    assert health["deadletters"]["by_reason"].get(reason, 0) - letters_before["by_reason"].get(reason, 0) == 2

    letters = [r.event for r in read_topic(stack_settings, "system.deadletter", idle_timeout=3, until_end=True)
               if isinstance(r, Consumed) and r.event.original_value in (poison_value, b"\x05not even framed")]
    assert sorted(letter.original_value for letter in letters) == sorted([poison_value, b"\x05not even framed"])
    for letter in letters:
        assert isinstance(letter, DeadLetter)
        assert letter.source_topic == "market.trades" and letter.agent == AGENT
        assert letter.reason == "undecodable" and letter.attempt == 1
        assert letter.error_type in {"UnknownSchemaId", "BadMagicByte"}
        assert letter.original_key in {b"BTCUSDT", b"ETHUSDT"}
        assert letter.source_offset >= 0

    # Every good trade reached a candle: once the quiet symbols' windows close (idle
    # timeout), the final 1m candles of each symbol add up to exactly its trades.
    for symbol in symbols:
        mine = [t for t in trades if t.symbol == symbol]
        body = _wait_for_closed(worker, symbol, "1m", len(mine))
        closed = body["closed"]
        assert sum(c["trade_count"] for c in closed) == len(mine)
        assert sum(Decimal(c["volume"]) for c in closed) == sum(t.size for t in mine)
        assert Decimal(closed[0]["open"]) == mine[0].price
        assert Decimal(closed[-1]["close"]) == mine[-1].price
        assert max(Decimal(c["high"]) for c in closed) == max(t.price for t in mine)
        assert body["live"] == []


def _wait_for_closed(worker: WorkerProcess, symbol: str, interval: str, trades: int,
                     timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        status, body = http_json(f"{worker.url}/candles/{symbol}?interval={interval}&limit=1000")
        if status == 200 and sum(c["trade_count"] for c in body["closed"]) >= trades:
            return body
        time.sleep(0.5)
    raise AssertionError(f"closed candles of {symbol} never covered {trades} trades: {body}")


def test_candle_queries_answer_404_and_400_in_json(shared_worker: Shared) -> None:
    _, worker = shared_worker
    status, body = http_json(f"{worker.url}/candles/NOPE")
    assert status == 404 and "NOPE" in body["error"]
    status, body = http_json(f"{worker.url}/candles/BTCUSDT?interval=7m")
    assert status == 400 and body["parameter"] == "interval" and "1m" in body["error"]
    status, body = http_json(f"{worker.url}/candles/BTCUSDT?limit=0")
    assert status == 400 and body["parameter"] == "limit"


def test_health_names_worker_and_partitions_and_heartbeats_flow(shared_worker: Shared) -> None:
    stack_settings, worker = shared_worker
    health = worker.health()
    assert health["status"] == "ok"
    assert health["app_id"] == stack_settings.app_id
    assert any(p.startswith(f"{stack_settings.app_id}-market.trades-owners[") for p in health["assigned_partitions"])
    reader = worker.wait_until(lambda h: h["trade_reader"]["assigned_partitions"],
                               what="the trade reader's assignment")["trade_reader"]
    assert reader["assigned_partitions"] == [f"market.trades[{p}]" for p in range(stack_settings.partitions)]
    beats = [r.event for r in read_topic(stack_settings, "system.heartbeats", limit=1,
                                         idle_timeout=15) if isinstance(r, Consumed)]
    assert beats and isinstance(beats[0], Heartbeat)
    assert beats[0].component == "worker"


def _processed_metric(worker: WorkerProcess) -> float:
    text = urllib.request.urlopen(f"{worker.url}/metrics", timeout=5).read().decode()
    series = f'ticktide_events_processed_total{{agent="{AGENT}"}} '
    found = [line.removeprefix(series) for line in text.splitlines() if line.startswith(series)]
    return float(found[0]) if found else 0.0


def test_metrics_endpoint_counts_processed_events(shared_worker: Shared) -> None:
    stack_settings, worker = shared_worker
    processed, counted = worker.processed(AGENT), _processed_metric(worker)
    with EventProducer(stack_settings) as producer:
        for trade in _trades(10, ("MTRBTCUSDT", "MTRETHUSDT")):
            producer.send("market.trades", trade)
    worker.wait_until(lambda h: h["agents"].get(AGENT, {}).get("processed", 0) >= processed + 10, 60)
    assert _processed_metric(worker) - counted == 10


def test_stray_records_on_the_owners_topic_change_nothing(shared_worker: Shared) -> None:
    """The internal owners topic only says who folds which partition: bytes someone sends
    to it (a trade, garbage) are never folded, and the candle fold goes on."""
    stack_settings, worker = shared_worker
    symbol = "STRAYUSDT"
    first = _trades(20, (symbol,))
    later = [make_trade(symbol=symbol, trade_id=5000 + i, trade_time=T0 + timedelta(hours=1, seconds=i))
             for i in range(20)]  # after the idle close of the first ones
    processed = worker.processed(AGENT)
    with EventProducer(stack_settings) as producer:
        for trade in first:
            producer.send("market.trades", trade)
    worker.wait_until(lambda h: h["agents"].get(AGENT, {}).get("processed", 0) >= processed + 20, 60, "20 trades")
    partition = (murmur2(symbol.encode()) & 0x7FFFFFFF) % stack_settings.partitions  # its trades' partition
    owners = f"{stack_settings.app_id}-market.trades-owners"  # the app's internal topic
    with EventProducer(stack_settings) as producer:
        producer.send_raw(owners, symbol.encode(), producer.codec.encode(first[0]), partition=partition)
        producer.send_raw(owners, b"stray", b"\x00garbage", partition=partition)
        for trade in later:
            producer.send("market.trades", trade)
    body = _wait_for_closed(worker, symbol, "1m", 40)
    assert sum(c["trade_count"] for c in body["closed"]) == 40  # the stray trade was not folded
    assert worker.health()["status"] == "ok"


def test_candle_rows_reach_the_changelog_as_a_new_owner_recovers_them(shared_worker: Shared) -> None:
    """The candle fold writes its rows through librdkafka (streams/faust/table_rows.py): what
    lands in the changelog must be the rows under their own keys, or a worker that takes the
    partition over recovers nothing and folds the partition again from its start."""
    stack_settings, _ = shared_worker
    with EventProducer(stack_settings) as producer:
        for trade in _trades(12, ("ADAUSDT",)):
            producer.send("market.trades", trade)
    partition = (murmur2(b"ADAUSDT") & 0x7FFFFFFF) % stack_settings.partitions
    topic = names.changelog_topic(stack_settings.app_id, names.CANDLES)
    rows: dict = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ends = list(end_offsets(stack_settings, topic))
        rows = {json.loads(r.key): json.loads(r.value) for r in
                read_range(stack_settings, topic, [0] * len(ends), ends) if r.key and r.value}
        if rows.get("ADAUSDT", {}).get("source_offset") is not None and names.progress_key(partition) in rows:
            break
        time.sleep(1)
    assert rows.get("ADAUSDT", {}).get("symbol") == "ADAUSDT", f"no ADAUSDT row in {list(rows)[:10]}"
    progress = rows[names.progress_key(partition)]["applied_through"]
    assert progress >= rows["ADAUSDT"]["source_offset"] >= 0
