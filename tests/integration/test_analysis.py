"""Closed candles flow on into indicators and anomalies, queryable over HTTP, with
lineage back to the candle that caused them; candles of an interval the analysis is not
asked for are read and left alone. The tests share one worker (one xdist group)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest

from schemas.records import Anomaly, IndicatorSnapshot, Side
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.factories import T0, make_trade
from tests.harness import WorkerProcess, http_json

pytestmark = pytest.mark.xdist_group("analysis")

SHARED_WORKER_SETTINGS = {"analysis_intervals": "1m,5m,5m/1m"}
"""Every window but 1s (the worker folds 1s candles too)."""
MINUTES = 40
BURST_MINUTE = 35


def _trades(symbol: str) -> list:
    trades = []
    for i in range(MINUTES * 30):  # one trade every 2 s
        t = T0 + timedelta(seconds=2 * i)
        price = Decimal("100") + Decimal(i % 17) / 10 + Decimal(i) / 100
        in_burst = 30 * BURST_MINUTE <= i < 30 * (BURST_MINUTE + 1)
        size = Decimal("40") if in_burst else Decimal("0.5") + Decimal(i % 7) / 10
        trades.append(make_trade(symbol=symbol, trade_id=i, price=price, size=size, trade_time=t,
                                 taker_side=Side.BUY if i % 3 else Side.SELL))
    return trades


def _wait(url: str, ready, timeout: float = 90) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        status, body = http_json(url)
        if status == 200 and ready(body):
            return body
        time.sleep(0.5)
    raise AssertionError(f"{url} never got ready: {body}")


def test_indicators_and_volume_anomaly_from_closed_candles(shared_worker: tuple[Settings, WorkerProcess]) -> None:
    stack_settings, worker = shared_worker
    with EventProducer(stack_settings) as producer:
        for trade in _trades("BTCUSDT"):
            producer.send("market.trades", trade)

    body = _wait(f"{worker.url}/indicators/BTCUSDT",
                 lambda b: "1m" in b["indicators"]
                 and b["indicators"]["1m"]["latest"]["ema_slow"] is not None)
    assert "1s" not in body["indicators"]  # 1 s candles were closed and published, not analysed
    latest = body["indicators"]["1m"]["latest"]
    assert latest["ema_fast"] is not None and 0 <= latest["rsi"] <= 100
    assert latest["envelope"]["causation_id"] == latest["candle_id"]

    anomalies = _wait(f"{worker.url}/anomalies?symbol=BTCUSDT",
                      lambda b: any(a["rule"] == "volume_zscore" and a["interval"] == "1m"
                                        for a in b["anomalies"]))["anomalies"]
    burst = [a for a in anomalies if a["rule"] == "volume_zscore" and a["interval"] == "1m"]
    assert burst and burst[0]["value"] > burst[0]["threshold"]
    assert "BTCUSDT" in burst[0]["description"]

    snapshots = [r.event for r in read_topic(stack_settings, "analysis.indicators", idle_timeout=3, until_end=True)
                 if isinstance(r, Consumed)]
    assert snapshots and all(isinstance(s, IndicatorSnapshot) for s in snapshots)
    assert {s.interval for s in snapshots} == {"1m", "5m", "5m/1m"}
    candles = [r.event for r in read_topic(stack_settings, "market.candles", idle_timeout=3, until_end=True)
               if isinstance(r, Consumed)]
    assert any(c.interval == "1s" for c in candles)
    one_minute = [s for s in snapshots if s.interval == "1m"]
    assert len({s.candle_id for s in one_minute}) == len(one_minute)  # one per candle
    warm = [s for s in one_minute if s.ema_slow is None]
    assert len(warm) == 25  # EMA(26) needs 26 candles: explicit warm-up, no early values
    found = [r.event for r in read_topic(stack_settings, "analysis.anomalies", idle_timeout=3, until_end=True)
             if isinstance(r, Consumed)]
    assert any(isinstance(a, Anomaly) and a.rule == "volume_zscore" for a in found)


def test_analysis_queries_validate_parameters(shared_worker: tuple[Settings, WorkerProcess]) -> None:
    _, worker = shared_worker
    status, body = http_json(f"{worker.url}/anomalies")
    assert status == 400 and body["parameter"] == "symbol"
    status, body = http_json(f"{worker.url}/indicators/NOPE")
    assert status == 404
    for raw_dump in ("/table/", "/router/"):
        try:
            urllib.request.urlopen(f"{worker.url}{raw_dump}", timeout=5)
            raise AssertionError(f"{raw_dump} should be off")
        except urllib.error.HTTPError as error:
            assert error.code == 404
