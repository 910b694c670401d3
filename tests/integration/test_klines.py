"""GET /klines answers Binance's kline arrays: the recorded Binance trades, produced with the
CLI into a running worker, give klines equal field by field to klines computed here from
the same CSV with plain Decimal arithmetic (knowing nothing of the fold). A hostile query
gets 400 naming the parameter, with Binance's error code."""

from __future__ import annotations

import csv
import gzip
import time
import urllib.parse
from collections import defaultdict
from decimal import Decimal
from typing import Any

from streams.settings import Settings
from tests.harness import DATA, WorkerProcess, http_json, run_cli

BTC_CSV = DATA / "binance_usdm_BTCUSDT_20240718-20240719.trades.csv.gz"
DECIMAL_FIELDS = {1: "open", 2: "high", 3: "low", 4: "close", 5: "volume", 7: "quote asset volume",
                  9: "taker buy base asset volume", 10: "taker buy quote asset volume"}
INTEGER_FIELDS = {0: "open time", 6: "close time", 8: "number of trades"}


def reference_klines(interval_ms: int) -> dict[int, list[Any]]:
    """Binance's klines of the recorded trades by open time, straight from the CSV (columns:
    id, price, qty, quote_qty, time ms, is_buyer_maker; the taker bought when the buyer was
    not the maker)."""
    groups: dict[int, list[tuple[int, int, Decimal, Decimal, bool]]] = defaultdict(list)
    with gzip.open(BTC_CSV, "rt", newline="") as file:
        for trade_id, price, qty, _, time_ms, buyer_is_maker in csv.reader(file):
            ms = int(time_ms)
            groups[ms - ms % interval_ms].append((ms, int(trade_id), Decimal(price), Decimal(qty),
                                                  buyer_is_maker == "False"))
    klines = {}
    for open_ms, trades in groups.items():
        ordered = sorted(trades)
        prices = [t[2] for t in trades]
        buys = [t for t in trades if t[4]]
        klines[open_ms] = [
            open_ms, ordered[0][2], max(prices), min(prices), ordered[-1][2], sum(t[3] for t in trades),
            open_ms + interval_ms - 1, sum(t[2] * t[3] for t in trades), len(trades),
            sum(t[3] for t in buys), sum(t[2] * t[3] for t in buys), "0"]
    return klines


def _klines(worker: WorkerProcess, **query: str) -> tuple[int, Any]:
    return http_json(f"{worker.url}/klines?{urllib.parse.urlencode(query)}")


def _wait_for_klines(worker: WorkerProcess, interval: str, trades: int, timeout: float = 90) -> list[list[Any]]:
    """The klines once they cover every trade (closed or live: a live kline with all of its
    trades says what the closed one will)."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        status, body = _klines(worker, symbol="BTCUSDT", interval=interval, limit="1000")
        if status == 200 and sum(k[8] for k in body) == trades:
            return list(body)
        time.sleep(0.5)
    raise AssertionError(f"/klines never covered {trades} trades: {str(body)[:500]}")


def test_klines_equal_the_reference_field_by_field(stack_settings: Settings, worker: WorkerProcess) -> None:
    sent = run_cli("produce", "market.trades", "--format", "binance-trades", "--symbol", "BTCUSDT",
                   "--file", str(BTC_CSV), settings=stack_settings)
    assert sent.returncode == 0, sent.stderr

    for interval, interval_ms in (("1m", 60_000), ("1s", 1_000)):
        expected = reference_klines(interval_ms)
        trades = sum(k[8] for k in expected.values())
        got = _wait_for_klines(worker, interval, trades)
        assert [k[0] for k in got] == sorted(expected), f"{interval}: open times"
        for kline in got:
            assert len(kline) == 12 and kline[11] == "0"
            want = expected[kline[0]]
            for index, name in INTEGER_FIELDS.items():
                assert type(kline[index]) is int and kline[index] == want[index], (interval, kline[0], name)
            for index, name in DECIMAL_FIELDS.items():
                assert isinstance(kline[index], str), (interval, kline[0], name)
                assert Decimal(kline[index]) == want[index], (interval, kline[0], name, kline[index], want[index])

    # limit: the newest N; startTime: the first N from it; endTime bounds the open time
    minutes = sorted(reference_klines(60_000))
    status, newest = _klines(worker, symbol="BTCUSDT", interval="1m", limit="2")
    assert status == 200 and [k[0] for k in newest] == minutes[-2:]
    status, ranged = _klines(worker, symbol="BTCUSDT", interval="1m", limit="2", startTime=str(minutes[1] - 1))
    assert status == 200 and [k[0] for k in ranged] == minutes[1:3]
    status, bounded = _klines(worker, symbol="BTCUSDT", interval="1m", endTime=str(minutes[2]))
    assert status == 200 and [k[0] for k in bounded] == minutes[:3]
    _hostile_queries_are_400_naming_the_parameter(worker)  # the same worker: one start per file


def _hostile_queries_are_400_naming_the_parameter(worker: WorkerProcess) -> None:
    cases: list[tuple[dict[str, str] | str, str, int]] = [
        ({"interval": "1m"}, "symbol", -1121),
        ({"symbol": "BTC USDT", "interval": "1m"}, "symbol", -1121),
        ({"symbol": "B" * 1000, "interval": "1m"}, "symbol", -1121),
        ({"symbol": "BTCUSDT"}, "interval", -1120),
        ({"symbol": "BTCUSDT", "interval": "5m/1m"}, "interval", -1120),  # hopping: no kline
        ({"symbol": "BTCUSDT", "interval": "7m"}, "interval", -1120),
        ({"symbol": "BTCUSDT", "interval": "1m" * 500}, "interval", -1120),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "0"}, "limit", -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "1001"}, "limit", -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "\uff11\uff10"}, "limit", -1100),  # fullwidth digits
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "-5"}, "limit", -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "1e12"}, "startTime", -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "9" * 400}, "startTime", -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "20", "endTime": "10"}, "endTime", -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "timeZone": "0"}, "timeZone", -1100),
        ("symbol=BTCUSDT&interval=1m&interval=1s", "interval", -1120),
    ]
    for query, parameter, code in cases:
        text = query if isinstance(query, str) else urllib.parse.urlencode(query)
        status, body = http_json(f"{worker.url}/klines?{text}")
        assert status == 400, (query, status, body)
        assert body["parameter"] == parameter and body["code"] == code, (query, body)
        assert body["msg"] == body["error"] and parameter in body["error"], (query, body)
    status, body = _klines(worker, symbol="NOSUCH", interval="1m")
    assert status == 404 and "NOSUCH" in body["error"] and body["code"] == -1121
