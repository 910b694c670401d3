"""A local Apache Kafka cluster (KRaft): N JVMs on loopback, each node controller and broker.

``ticktide broker --engine kafka`` runs one in the foreground; the test suite starts its own
and uses the same API to break it: ``kill`` (SIGKILL) a node, ``restart`` it, find
``leaders``. Each JVM is tied to its parent (PR_SET_PDEATHSIG) so none outlives the process
that started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from streams.devstack.broker import die_with_parent, free_port, port_is_free
from streams.devstack.kafka_config import (
    LOG4J2,
    NodeSpec,
    jvm_options,
    new_cluster_id,
    node_ports,
    render_properties,
    server_properties,
)
from streams.devstack.kafka_jars import MAIN_CLASS, STORAGE_TOOL, classpath, java_binary
from streams.errors import BrokerError


class KafkaCluster:
    """N Apache Kafka nodes on ``host``, node i listening on ``port + i - 1``."""

    def __init__(self, nodes: int = 1, port: int | None = None, host: str = "127.0.0.1",
                 data_dir: Path | None = None, extra: Mapping[str, str] | None = None,
                 heap_max: str | None = None) -> None:
        if nodes < 1:
            raise BrokerError("a Kafka cluster needs at least one node")
        self.host = host
        self.count = nodes
        self.first_port = port or _free_run(nodes, host)
        self.extra = dict(extra or {})
        self.heap_max = heap_max
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="ticktide-kafka-"))
        self.nodes = [
            NodeSpec(i + 1, host, p, free_port(host), self.data_dir / f"node-{i + 1}")
            for i, p in enumerate(node_ports(self.first_port, nodes))
        ]
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._logs: dict[int, IO[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        """Every node's HOST:PORT, comma-separated (for ``--broker``)."""
        return ",".join(n.address for n in self.nodes)

    def pid(self, node_id: int) -> int | None:
        """A running node's process id."""
        process = self._processes.get(node_id)
        return process.pid if process is not None and process.poll() is None else None

    def log_file(self, node_id: int) -> Path:
        """Where a node's JVM writes its output."""
        return self.data_dir / f"node-{node_id}.log"

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> str:
        """Format the nodes' storage (first start), start every node and wait until the
        cluster has all of them; returns the bootstrap list."""
        busy = [n.address for n in self.nodes if not port_is_free(n.port, self.host)]
        if busy:
            raise BrokerError(f"port(s) already in use: {', '.join(busy)}; pick another with --port")
        java, path = java_binary(), classpath()
        self._write_configs()
        self._format(java, path)
        for node in self.nodes:
            self._launch(node, java, path)
        self.wait_ready(timeout)
        return self.bootstrap

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (no clean shutdown) and wait for it to be gone."""
        process = self._processes.get(node_id)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self, node_id: int, timeout: float = 120.0) -> None:
        """Start a stopped or killed node again on its own data, and wait until the
        cluster counts it again."""
        if self.pid(node_id) is not None:
            raise BrokerError(f"node {node_id} is still running")
        self._launch(self._node(node_id), java_binary(), classpath())
        self.wait_ready(timeout)

    def stop(self, timeout: float = 30.0, graceful: bool = True) -> None:
        """Stop every node (SIGTERM, then SIGKILL after ``timeout``; at once when not
        ``graceful``: data to be thrown away), then remove a temporary data dir."""
        running = [p for p in self._processes.values() if p.poll() is None]
        for process in running:
            if graceful:
                process.terminate()
            else:
                process.kill()
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def wait(self) -> int:
        """Block until any node exits; its exit code."""
        while True:
            for process in self._processes.values():
                code = process.poll()
                if code is not None:
                    return code
            time.sleep(0.5)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until every running node is a registered broker of the cluster."""
        wanted = {n.node_id for n in self.nodes if self.pid(n.node_id) is not None}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node_id, process in self._processes.items():
                if process.poll() is not None and node_id in wanted:
                    raise BrokerError(f"Kafka node {node_id} exited with code {process.returncode}; "
                                      f"see {self.log_file(node_id)}")
            live = [n for n in self.nodes if n.node_id in wanted and not port_is_free(n.port, self.host)]
            if live:
                admin = _admin(",".join(n.address for n in live))
                with contextlib.suppress(Exception):
                    if wanted <= set(admin.list_topics(timeout=2).brokers):
                        return
            time.sleep(0.2)
        raise BrokerError(f"Kafka nodes {sorted(wanted)} did not all register in {timeout:.0f} s "
                          f"(logs in {self.data_dir})")

    # -- what the cluster looks like ------------------------------------------------

    def leaders(self, topic: str, timeout: float = 10.0) -> dict[int, int]:
        """partition -> node id of its leader (-1 while it has none)."""
        metadata = _admin(self.live_bootstrap()).list_topics(topic, timeout=timeout)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise BrokerError(f"no metadata for topic {topic}")
        return {p: int(info.leader) for p, info in sorted(found.partitions.items())}

    def in_sync(self, topic: str, timeout: float = 10.0) -> dict[int, list[int]]:
        """partition -> node ids of its in-sync replicas."""
        metadata = _admin(self.live_bootstrap()).list_topics(topic, timeout=timeout)
        return {p: sorted(int(r) for r in info.isrs) for p, info in sorted(metadata.topics[topic].partitions.items())}

    def wait_leaders_moved(self, node_id: int, timeout: float = 120.0) -> float:
        """Wait until no partition of any topic is led by ``node_id`` (stopped or killed:
        the controller fences it after broker.session.timeout.ms); the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(Exception):
                metadata = _admin(self.live_bootstrap()).list_topics(timeout=5)
                leaders = {p.leader for t in metadata.topics.values() for p in t.partitions.values()}
                if node_id not in leaders:
                    return time.monotonic() - started
            time.sleep(0.2)
        raise BrokerError(f"node {node_id} still leads partitions after {timeout:.0f} s")

    def live_bootstrap(self) -> str:
        """HOST:PORT of the nodes running now."""
        return ",".join(n.address for n in self.nodes if self.pid(n.node_id) is not None) or self.bootstrap

    # -- internals -------------------------------------------------------------------

    def _node(self, node_id: int) -> NodeSpec:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise BrokerError(f"no node {node_id} (nodes are 1..{self.count})")

    def _config(self, node: NodeSpec) -> Path:
        return self.data_dir / f"node-{node.node_id}.properties"

    def _write_configs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(LOG4J2)
        for node in self.nodes:
            self._config(node).write_text(render_properties(server_properties(node, self.nodes, self.extra)))

    def _format(self, java: str, path: str) -> None:
        """Format every node's storage that is not formatted yet (in parallel: one JVM each)."""
        todo = [n for n in self.nodes if not (n.log_dir / "meta.properties").exists()]
        if not todo:
            return
        cluster = self._cluster_id() or new_cluster_id()
        formats = [subprocess.Popen(
            [java, *self._jvm(), "-cp", path, STORAGE_TOOL, "format", "--ignore-formatted",
             "-t", cluster, "-c", str(self._config(node))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        ) for node in todo]
        for node, process in zip(todo, formats, strict=True):
            out, _ = process.communicate(timeout=300)
            if process.returncode != 0:
                raise BrokerError(f"formatting Kafka node {node.node_id} failed: {out.decode(errors='replace')[-400:]}")

    def _cluster_id(self) -> str | None:
        for node in self.nodes:
            meta = node.log_dir / "meta.properties"
            if meta.exists():
                for line in meta.read_text().splitlines():
                    if line.startswith("cluster.id="):
                        return line.split("=", 1)[1].strip()
        return None

    def _jvm(self) -> list[str]:
        return [*(jvm_options(self.heap_max) if self.heap_max else jvm_options()),
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"]

    def _launch(self, node: NodeSpec, java: str, path: str) -> None:
        old = self._logs.pop(node.node_id, None)
        if old is not None:
            old.close()
        log = open(self.log_file(node.node_id), "ab")  # noqa: SIM115 - closed in stop()
        self._logs[node.node_id] = log
        self._processes[node.node_id] = subprocess.Popen(
            [java, *self._jvm(), "-cp", path, MAIN_CLASS, str(self._config(node))],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent, start_new_session=True,
        )

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __del__(self) -> None:
        for process in getattr(self, "_processes", {}).values():
            if process.poll() is None:
                with contextlib.suppress(Exception):
                    os.kill(process.pid, signal.SIGKILL)


_QUIET = logging.getLogger("ticktide.kafka_cluster.admin")
_QUIET.setLevel(logging.CRITICAL)  # nodes come and go here: connection errors are expected


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _QUIET}
    return AdminClient(config)


def _free_run(count: int, host: str, tries: int = 50) -> int:
    """A first port such that it and the ``count - 1`` after it are free."""
    for _ in range(tries):
        first = free_port(host)
        if all(port_is_free(first + i, host) for i in range(count)):
            return first
    raise BrokerError(f"no {count} consecutive free ports found")
