"""A ticktide worker as the bench runs it: its own process, a fresh app id, seen through /health.

What the bench reads, in one place (change these when the agents or /health change): the
candle agent's processed count, the pipeline latency (``pipeline.latency_ms``: p50/p99 of
the last folds, from each trade record's timestamp to its fold) and the assignments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.contest import peak_rss_mb, rss_mb
from streams.devstack.broker import die_with_parent, free_port

AGENT = "market.trades"
HEALTH_PATH = "/health"
PROCESSED_KEYS = ("agents", AGENT, "processed")
LATENCY_KEYS = ("pipeline", "latency_ms")
AGENT_ASSIGNED_KEYS = ("assigned_partitions",)
READER_ASSIGNED_KEYS = ("trade_reader", "assigned_partitions")
REPO = Path(__file__).resolve().parents[1]
JOIN_TIMEOUT_S = 90.0


def dig(data: Any, keys: Sequence[str]) -> Any:
    """data[k1][k2]...; None where a level is missing."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def get_health(url: str) -> dict[str, Any] | None:
    """The worker's /health, or None while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(json.loads(response.read()))
    except (OSError, ValueError):
        return None


def log_tail(log: Path, lines: int = 3) -> str:
    """The last lines of a log, on one line (the log itself is in a temporary directory)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


@dataclass(frozen=True)
class Sample:
    """One look at the worker: when (monotonic, mid-request), what /health said, its RSS."""

    at: float
    health: dict[str, Any] | None
    rss_mb: float | None

    @property
    def processed(self) -> int:
        return int(dig(self.health, PROCESSED_KEYS) or 0)

    @property
    def latency_ms(self) -> dict[str, float] | None:
        latency = dig(self.health, LATENCY_KEYS)
        return latency if isinstance(latency, dict) else None

    @property
    def ready(self) -> bool:
        """Answering, not rebalancing, and market.trades partitions assigned to the trade reader."""
        return (dig(self.health, ("status",)) == "ok" and bool(dig(self.health, AGENT_ASSIGNED_KEYS))
                and bool(dig(self.health, READER_ASSIGNED_KEYS)))


class Worker:
    """``python -m streams.cli worker`` on ``bootstrap`` (a broker of ``flavor``: ``tansu`` or
    ``kafka``) in a fresh app id; stopped on exit."""

    def __init__(self, bootstrap: str, workdir: Path, flavor: str = "tansu",
                 settings: Mapping[str, str] | None = None) -> None:
        """``settings``: more of the worker's settings, as ``TICKTIDE_<NAME>`` variables."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTIDE_")}
        env.update({
            "TICKTIDE_BROKER": bootstrap, "TICKTIDE_BROKER_FLAVOR": flavor,
            "TICKTIDE_APP_ID": f"bench-{uuid.uuid4().hex[:8]}", "TICKTIDE_DATA_DIR": str(workdir / "data"),
            "TICKTIDE_WEB_PORT": str(port), "TICKTIDE_SESSION_TIMEOUT_S": "6",
            "TICKTIDE_HEARTBEAT_INTERVAL_S": "1", **(settings or {}),
        })
        self.log = workdir / "worker.log"
        self.url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO, env=env,
                                            stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def sample(self) -> Sample:
        """/health and RSS now; RuntimeError if the worker has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited {self.process.returncode}: {log_tail(self.log)}")
        asked = time.monotonic()
        health = get_health(self.url)
        return Sample((asked + time.monotonic()) / 2, health, rss_mb(self.process.pid))

    def wait_ready(self, timeout: float = JOIN_TIMEOUT_S, poll_s: float = 0.5) -> Sample:
        """The first sample that shows the worker ready (see Sample.ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sample = self.sample()
            if sample.ready:
                return sample
            time.sleep(poll_s)
        raise RuntimeError(f"worker not assigned within {timeout:.0f} s: {log_tail(self.log)}")

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.process.pid)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
