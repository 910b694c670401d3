"""`make run` (= `ticktide dev`): broker, worker, feed and web views come up together,
trades flow, and Ctrl-C stops everything with no process left behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.harness import DATA, FEED_STALL_IDLE_CLOSE_S, REPO, cli_env, free_port, http_json, run_cli
from tests.reference import as_plain_candle, plain_1m_candles, recorded_ws_trades

RECORDING = DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"



def _banner(dev: subprocess.Popen[str]) -> str:
    """What `ticktide dev` prints up to its last banner line."""
    banner = ""
    assert dev.stdout is not None
    while "Ctrl-C stops everything" not in banner:
        line = dev.stdout.readline()
        assert line, f"dev exited early:\n{banner}"
        banner += line
    return banner

def test_dev_stack_runs_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    web_port = free_port()
    dev = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "dev", "--broker-port", "0", "--web-port",
         str(web_port), "--rate", "300"],
        env=cli_env(TICKTIDE_DATA_DIR=str(tmp_path / "state"), TICKTIDE_SESSION_TIMEOUT_S="6"),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        banner = _banner(dev)
        bootstrap = re.search(r"TICKTIDE_BROKER=(\S+)\)", banner)
        assert bootstrap, banner

        consumed = run_cli("consume", "market.trades", "--limit", "5", "--timeout", "30",
                           "--broker", bootstrap[1])
        assert consumed.returncode == 0, consumed.stderr
        trades = [json.loads(line) for line in consumed.stdout.splitlines()]
        assert len(trades) == 5
        assert {t["symbol"] for t in trades} <= {"BTCUSDT", "ETHUSDT"}

        deadline = time.monotonic() + 90
        health: dict = {}
        while time.monotonic() < deadline:
            try:
                status, health = http_json(f"http://127.0.0.1:{web_port}/health")
                if status == 200 and health["agents"].get("market.trades", {}).get("processed"):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert health["agents"]["market.trades"]["processed"] > 0, health

        processes = _descendants(dev.pid)
        assert len(processes) >= 3  # broker, worker, feed
        dev.send_signal(signal.SIGINT)
        rest, _ = dev.communicate(timeout=60)
        assert dev.returncode == 0, rest
        assert "stopped: feed, worker, broker" in rest
        time.sleep(0.5)
        assert [pid for pid in processes if _alive(pid)] == []
    finally:
        if dev.poll() is None:
            dev.kill()


def test_dev_with_a_recording_as_feed_shows_the_recordings_own_candles(tmp_path: Path) -> None:
    web_port = free_port()
    dev = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "dev", "--broker-port", "0", "--web-port", str(web_port),
         "--feed", str(RECORDING)],  # no --format: guessed from the file
        env=cli_env(TICKTIDE_DATA_DIR=str(tmp_path / "state"), TICKTIDE_SESSION_TIMEOUT_S="6",
                    TICKTIDE_IDLE_CLOSE_S=str(FEED_STALL_IDLE_CLOSE_S), TICKTIDE_WINDOWS="1m"),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    expected = {key: candle for key, candle in plain_1m_candles(recorded_ws_trades(RECORDING)).items()
                if key[0] == "BTCUSDT"}
    try:
        banner = _banner(dev)
        assert f"dashboard  http://localhost:{web_port}/" in banner
        assert "(--format binance-ws) -> market.trades, once, no synthetic feed" in banner
        url = f"http://127.0.0.1:{web_port}/candles/BTCUSDT?interval=1m&limit=50"
        deadline, body = time.monotonic() + 150, {}
        while time.monotonic() < deadline:
            try:
                status, body = http_json(url)
                if status == 200 and len(body["closed"]) >= len(expected):
                    break
            except (OSError, ValueError):  # not up yet (a 500 with a text body while the worker starts)
                pass
            time.sleep(1)
        got = dict(as_plain_candle(candle) for candle in body.get("closed", []))
        assert got == expected, f"{len(got)} candles, expected {len(expected)}"
        assert body["late_trades"] == 0
        dev.send_signal(signal.SIGINT)
        rest, _ = dev.communicate(timeout=60)
        assert "feed: sent 24356 rows, rejected 0" in banner + rest
        assert dev.returncode == 0, rest
    finally:
        if dev.poll() is None:
            dev.kill()
