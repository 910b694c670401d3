"""Test harness: the broker (started by the suite itself, never skipped), settings pointing
at it, the `ticktide` CLI and worker processes.

The engine the suite runs on is chosen here, once: ``TICKTIDE_TEST_ENGINE`` (or pytest's
``--engine``, which sets it) is ``tansu`` (the embedded broker, default) or ``kafka``
(Apache Kafka, one local node per broker fixture). Everything else follows from the flavor
in the settings (``streams.engine``)."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pytest

from streams.devstack.broker import EmbeddedBroker, port_is_free
from streams.devstack.kafka_cluster import KafkaCluster
from streams.kafka.admin import create_topics
from streams.settings import Settings, load_settings
from tests.fakes.anthropic_server import FakeAnthropic

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


PORTS = range(10_000, 32_000)
"""Ports for the brokers and web views of tests: below Linux's ephemeral range (32768+),
which client sockets draw from, so no connection takes a port between its pick and its bind."""


def _port_slice(slices: int = 16) -> Iterator[int]:
    """This pytest-xdist process's own slice of PORTS, from a random place, round and round."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ... (unset: not parallel)
    size = len(PORTS) // slices
    start = PORTS.start + int(worker.removeprefix("gw") or 0) % slices * size
    offset = random.randrange(size)
    return (start + (offset + n) % size for n in itertools.count())


_PORTS = _port_slice()


def free_port() -> int:
    """A port nobody listens on, never handed out before in this session: no two tests, and
    no two processes of a parallel run, pick the same one."""
    return next(port for port in _PORTS if port_is_free(port))


ENGINE_VARIABLE = "TICKTIDE_TEST_ENGINE"
Engine = Literal["tansu", "kafka"]


def chosen_engine() -> Engine:
    """The engine this run tests on: ``TICKTIDE_TEST_ENGINE`` (pytest ``--engine``), default tansu."""
    chosen = os.environ.get(ENGINE_VARIABLE, "tansu").strip().lower() or "tansu"
    if chosen not in ("tansu", "kafka"):
        raise pytest.UsageError(f"{ENGINE_VARIABLE} must be tansu or kafka, not {chosen!r}")
    return "kafka" if chosen == "kafka" else "tansu"




class BrokerUnderTest(Protocol):
    """What tests use of a broker, whichever the engine."""

    @property
    def bootstrap(self) -> str: ...

    def stop(self) -> None: ...


def flavor_of(broker: BrokerUnderTest) -> Engine:
    """The settings flavor of a broker the harness started."""
    return "kafka" if isinstance(broker, KafkaCluster) else "tansu"


def start_broker(directory: Path, engine: Engine | None = None) -> EmbeddedBroker | KafkaCluster:
    """Start a broker of the test engine on free ports, logs and data under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if (engine or chosen_engine()) == "kafka":
        cluster = KafkaCluster(1, free_port_run(1), data_dir=directory / "kafka")
        cluster.start()
        return cluster
    embedded = EmbeddedBroker(free_port(), log_file=directory / "broker.log")
    embedded.start()
    return embedded


def stop_broker(broker: EmbeddedBroker | KafkaCluster) -> None:
    """Stop a test's broker at once (its data is thrown away)."""
    if isinstance(broker, KafkaCluster):
        broker.stop(graceful=False)
    else:
        broker.stop()


def free_port_run(count: int) -> int:
    """A first port of this process's slice with ``count`` free ports from it."""
    return next(port for port in _PORTS if all(port_is_free(port + i) for i in range(count)))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker | KafkaCluster]:
    """One broker of the test engine for the whole session, on a free port."""
    started = start_broker(tmp_path_factory.mktemp("broker"))
    yield started
    stop_broker(started)


@pytest.fixture
def isolated_broker(tmp_path: Path) -> Iterator[EmbeddedBroker | KafkaCluster]:
    """A broker of the test's own (empty topics; embedded: well under a second, Kafka: ~5 s)."""
    started = start_broker(tmp_path / "broker")
    yield started
    stop_broker(started)


SHARED_GROUP_SESSION_TIMEOUT_S = 15.0
"""Session timeout where several workers share a group: a rebalance opens every table
store in the consumer's thread, which on a loaded 2-core machine (a parallel suite) can
stall heartbeats past 6 s and evict the member again and again."""


FEED_STALL_IDLE_CLOSE_S = 20.0
"""Idle close (``idle_close_s``) for tests whose worker folds while the feed is still being
produced and whose candles are compared with a reference over the whole feed. The suite's
2 s default lets a producer stalled that long on a loaded machine have a caught-up worker
close windows mid-feed, as it should live, leaving later trades late where the reference
has none (it failed whole runs, in four tests)."""


SESSION_TIMEOUT_S: dict[Engine, float] = {"tansu": 6, "kafka": SHARED_GROUP_SESSION_TIMEOUT_S}
"""Consumer-group session timeout of a test's workers. Tansu: short, because a join waits about
half of it. Apache Kafka evicts a member whose heartbeats stop that long, and opening the
table stores on a rebalance stalls them for 6 s and more on this loaded 2-core machine: a
6 s session evicted single workers again and again (measured), so the shared-group figure."""


def settings_for(broker: BrokerUnderTest, tmp_path: Path, **extra: Any) -> Settings:
    """Settings for a test: its own app id, data dir and web port; ``extra`` overrides.
    Quiet symbols close every window after 2 s (``idle_close_all``), as at the end of a
    recording: tests fold recorded or synthetic times sent at once, then compare with a
    reference closed at the end (live, a quiet symbol's clock runs on with wall time)."""
    defaults: dict[str, Any] = {"session_timeout_s": SESSION_TIMEOUT_S[flavor_of(broker)],
                                "heartbeat_interval_s": 1, "idle_close_s": 2, "idle_close_all": True}
    # the ledger waits for a silent strategy past the idle close and the analysis after it
    defaults["ledger_wait_s"] = float(extra.get("idle_close_s", defaults["idle_close_s"])) + 8
    return load_settings(
        broker=broker.bootstrap, broker_flavor=flavor_of(broker), app_id=f"test-{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path / "data", web_port=free_port(), **{**defaults, **extra},
    )


@pytest.fixture
def stack_settings(isolated_broker: BrokerUnderTest, tmp_path: Path) -> Settings:
    """Settings on an isolated broker whose catalog topics exist."""
    settings = settings_for(isolated_broker, tmp_path)
    create_topics(settings)
    return settings


TRADING_SETTINGS = (
    "trading_account", "trading_strategy", "trading_interval", "order_quantity", "initial_cash", "fee_bps",
    "slippage_bps", "fill_participation", "max_position", "max_gross_exposure", "max_orders_per_minute",
    "order_timeout_s", "mark_interval_s", "api_token", "topic_prefix", "ledger_wait_s", "ledger_row_interval_s",
)
"""Trading settings a child process inherits from the test's settings (issue 5)."""


def cli_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """Environment for a `ticktide` child process."""
    # Never the real API key: a test talks to the fake Messages API or to none.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTIDE_") and k != "ANTHROPIC_API_KEY"}
    if settings is not None:
        env.update({
            "TICKTIDE_BROKER": settings.broker,
            "TICKTIDE_BROKER_FLAVOR": settings.broker_flavor,
            "TICKTIDE_REPLICATION_FACTOR": str(settings.replication_factor),  # Faust's own topics too
            "TICKTIDE_APP_ID": settings.app_id,
            "TICKTIDE_DATA_DIR": str(settings.data_dir),
            "TICKTIDE_WEB_PORT": str(settings.web_port),
            "TICKTIDE_SESSION_TIMEOUT_S": str(settings.session_timeout_s),
            "TICKTIDE_HEARTBEAT_INTERVAL_S": str(settings.heartbeat_interval_s),
            "TICKTIDE_IDLE_CLOSE_S": str(settings.idle_close_s),
            "TICKTIDE_IDLE_CLOSE_ALL": str(settings.idle_close_all).lower(),
            "TICKTIDE_GRACE_S": str(settings.grace_s),
            "TICKTIDE_WINDOWS": settings.windows,
            "TICKTIDE_ANALYSIS_INTERVALS": settings.analysis_intervals,
            "TICKTIDE_HEARTBEAT_PERIOD_S": str(settings.heartbeat_period_s),
            "TICKTIDE_STANDBY_REPLICAS": str(settings.standby_replicas),
            "TICKTIDE_PROCESSING_GUARANTEE": settings.processing_guarantee,
        })
        for name in TRADING_SETTINGS:
            value = getattr(settings, name)
            if value is not None:
                shown = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
                env[f"TICKTIDE_{name.upper()}"] = shown
    env.update(extra)
    return env


def run_cli(*args: str, settings: Settings | None = None, timeout: float = 120,
            input_text: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `ticktide ARGS` to completion and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], env=cli_env(settings, **env), cwd=REPO,
        capture_output=True, text=True, timeout=timeout, input=input_text,
    )


def http_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    """GET a JSON URL: (status, body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@dataclass
class WorkerProcess:
    """A `ticktide worker` child process and its web address."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def health(self) -> dict[str, Any]:
        """The worker's /health answer."""
        status, body = http_json(f"{self.url}/health")
        assert status == 200, body
        return dict(body)

    def wait_until(self, predicate: Any, timeout: float = 60.0, what: str = "condition") -> dict[str, Any]:
        """Poll /health until predicate(health) holds; the last health report."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.tail()}")
            try:
                last = self.health()
                if predicate(last):
                    return last
            except (OSError, AssertionError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; last health {last}\n{self.tail()}")

    def processed(self, agent: str) -> int:
        """Events the agent has finished with, per /health."""
        return int(self.health()["agents"].get(agent, {}).get("processed", 0))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Stop the worker; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def discard(self) -> None:
        """Kill the worker once its test is over: a clean stop (tested where it matters)
        closes every table store and costs seconds."""
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        """The end of the worker's log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_worker(settings: Settings, log: Path, **env: str) -> WorkerProcess:
    """Start `ticktide worker` (extra environment in ``env``) and wait until its web views answer."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=cli_env(settings, **env), cwd=REPO,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    worker = WorkerProcess(process, f"http://127.0.0.1:{settings.web_port}", log)
    try:
        worker.wait_until(lambda h: h["status"] == "ok" and h["assigned_partitions"], 90,
                          "the worker to join and get partitions")
    except BaseException:
        worker.discard()  # no test holds it yet: it would outlive the test
        raise
    return worker


@pytest.fixture
def worker(stack_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One running worker on the test's isolated broker."""
    started = start_worker(stack_settings, tmp_path / "worker.log")
    yield started
    started.discard()


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    """A local server that speaks the Anthropic Messages API, for the real `anthropic` client."""
    with FakeAnthropic() as server:
        yield server


@pytest.fixture(scope="module")
def shared_worker(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, WorkerProcess]]:
    """A broker with its topics and one running worker for a whole test module (its settings,
    with the module's ``SHARED_WORKER_SETTINGS`` if it has any, and the worker). The module's
    tests each use their own symbols and check what changed, never totals; the module is one
    ``xdist_group``, so the worker starts once."""
    root = tmp_path_factory.mktemp("shared")
    started_broker = start_broker(root / "broker")
    try:
        settings = settings_for(started_broker, root, **getattr(request.module, "SHARED_WORKER_SETTINGS", {}))
        create_topics(settings)
        started = start_worker(settings, root / "worker.log")
        try:
            yield settings, started
        finally:
            started.discard()
    finally:
        stop_broker(started_broker)
