"""`ticktide broker --engine kafka`: N Apache Kafka nodes in the foreground, one line per
node, the bootstrap list, everything stopped on SIGTERM; without Java one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from tests.harness import REPO, cli_env, free_port_run, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_nodes_start_print_their_addresses_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = free_port_run(2)
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "broker", "--engine", "kafka", "--nodes", "2", "--port", str(port),
         "--data-dir", str(tmp_path / "kafka")],
        env=cli_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]
        words = [line.split() for line in lines[:2]]
        assert [(w[0], w[1], w[2], w[4], w[5]) for w in words] == [
            ("node", "1", "pid", "listening", f"127.0.0.1:{port}"),
            ("node", "2", "pid", "listening", f"127.0.0.1:{port + 1}"),
        ], lines
        pids = [int(w[3]) for w in words]
        bootstrap = f"127.0.0.1:{port},127.0.0.1:{port + 1}"
        assert lines[2].split()[:2] == ["bootstrap", bootstrap]
        assert set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).brokers) == {1, 2}
        created = run_cli("topics", "create", "--broker", bootstrap, TICKTIDE_REPLICATION_FACTOR="2")
        assert created.returncode == 0, created.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert "kafka stopped" in process.stdout.read()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids), "a Kafka node outlived the command"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_without_java_one_line_says_what_is_missing() -> None:
    result = run_cli("broker", "--engine", "kafka", PATH="/nonexistent", JAVA_HOME="")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ticktide: --engine kafka needs Java 17 or newer: no `java` on PATH (install openjdk-17-jre-headless)"]
