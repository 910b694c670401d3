"""A backtest as a newcomer runs one: the recorded Binance trades produced into a topic a
synthetic feed keeps at "now" (so live judges them late, and `produce` says so), then ten
minutes of their market time replayed into a new app id. That app's candles, read with
`ticktide consume --app`, equal candles computed here from the raw file, and none of the
replayed trades was late."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from streams.devstack.broker import EmbeddedBroker
from streams.kafka.admin import create_topics
from tests.harness import DATA, free_port, run_cli, settings_for, start_worker
from tests.reference import as_plain_candle, epoch_ms, plain_1m_candles, recorded_ws_trades

pytestmark = pytest.mark.integration
RECORDING = DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz"
START, END = "2024-07-18T23:58:00Z", "2024-07-19T00:08:00Z"  # ten minutes; the file ends at 00:05:02
APP = "bt1"


def _consume(settings: Any, *args: str) -> list[dict[str, Any]]:
    done = run_cli("consume", *args, "--timeout", "3", settings=settings)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.timeout(400)
def test_ten_minutes_of_market_time_replayed_into_a_new_app_give_the_recordings_own_candles(
        isolated_broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = settings_for(isolated_broker, tmp_path, windows="1m", idle_close_s=2)
    create_topics(settings)
    trades = recorded_ws_trades(RECORDING)
    synthetic = ("produce", "market.trades", "--synthetic", "--rate", "300", "--duration", "1")
    assert run_cli(*synthetic, "--seed", "1", settings=settings).returncode == 0
    produced = run_cli("produce", "market.trades", "--file", str(RECORDING), "--format", "binance-ws",
                       settings=settings, timeout=300)
    assert produced.returncode == 0, produced.stderr
    assert f"warning: {len(trades)} of {len(trades)} trades are more than the 5 s grace behind" in produced.stderr
    assert "ticktide replay --topic market.trades --from 2024-07-18T23:57:02.707000Z" in produced.stderr
    assert run_cli(*synthetic, "--seed", "2", settings=settings).returncode == 0  # live goes on after it

    replayed = run_cli("replay", "--topic", "market.trades", "--from", START, "--to", END, "--into", APP,
                       settings=settings, timeout=300)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    in_range = [t for t in trades if epoch_ms(START) <= t["T"] < epoch_ms(END)]
    assert 0 < len(in_range) < len(trades)  # the range cuts the recording: a selection, not a copy
    assert f"replayed {len(in_range)} of " in replayed.stdout
    assert f"ticktide worker --app {APP} " in replayed.stdout
    assert f"ticktide consume market.candles --app {APP}" in replayed.stdout

    isolated = settings.model_copy(update={"app_id": APP, "topic_prefix": f"{APP}.", "web_port": free_port(),
                                           "data_dir": tmp_path / "bt1-data"})
    worker = start_worker(isolated, tmp_path / "bt1.log")
    expected = plain_1m_candles(in_range)
    try:
        deadline = time.monotonic() + 180
        while True:
            candles = _consume(settings, "market.candles", "--app", APP)
            if len(candles) >= len(expected) or time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        worker.discard()
    got = dict(as_plain_candle(c) for c in candles)
    assert len(got) == len(candles), "a window was published twice"
    assert sorted(got) == sorted(expected)
    wrong = [key for key in expected if got[key] != expected[key]]
    assert wrong == [], f"{len(wrong)} candles differ, e.g. {got[wrong[0]]} != {expected[wrong[0]]}"
    assert _consume(settings, f"{APP}.market.late") == []  # the prefixed name works as well
    rebuilt = run_cli("rebuild", "candles", "--app", APP, settings=settings, timeout=120)
    assert rebuilt.returncode == 0 and "candles: rebuild equals the live state" in rebuilt.stdout, rebuilt.stdout
    described = run_cli("topics", "describe", "market.trades", "--app", APP, settings=settings)
    assert f"{APP}.market.trades: 4 partitions, {len(in_range)} records" in described.stdout
    letters = run_cli("dlq", "list", "--app", APP, settings=settings)
    assert letters.returncode == 0 and "0 dead letters" in letters.stdout
