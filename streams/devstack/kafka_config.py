"""Pure configuration of a local Apache Kafka cluster: node layout, server.properties, JVM
options. No I/O: ``streams.devstack.kafka_cluster`` writes and runs what this describes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HEAP_MAX = "384m"
DEFAULT_HEAP_MIN = "128m"


@dataclass(frozen=True)
class NodeSpec:
    """One node: both KRaft controller and broker."""

    node_id: int
    host: str
    port: int
    controller_port: int
    log_dir: Path

    @property
    def address(self) -> str:
        """HOST:PORT of its client listener."""
        return f"{self.host}:{self.port}"


def node_ports(first_port: int, count: int) -> list[int]:
    """Client ports: node i (from 1) listens on ``first_port + i - 1``."""
    return [first_port + i for i in range(count)]


def new_cluster_id() -> str:
    """A random cluster id in Kafka's form (22 characters of URL-safe base64), never starting
    with "-" (the storage tool would read it as an option)."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


def quorum_voters(nodes: list[NodeSpec]) -> str:
    """controller.quorum.voters: every node votes."""
    return ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in nodes)


def replication(count: int) -> dict[str, str]:
    """Replication defaults for a cluster of ``count`` nodes: factor up to 3, and writes
    (acks=all) need 2 in-sync replicas once there are 3 nodes."""
    factor, min_isr = str(min(count, 3)), str(min(count, 2) if count >= 3 else 1)
    return {
        "default.replication.factor": factor,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": factor,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_isr,
    }


SMALL_BOX = {
    # Few threads and small buffers: three nodes and the workers share 2 cores.
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.replica.fetchers": "1",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
    "log.cleaner.io.buffer.size": str(512 * 1024),
    "offsets.topic.num.partitions": "8",
    "transaction.state.log.num.partitions": "4",
    "group.initial.rebalance.delay.ms": "0",
    "unclean.leader.election.enable": "false",
}


def server_properties(node: NodeSpec, nodes: list[NodeSpec],
                      extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """server.properties of one node (``extra`` overrides, e.g. cleaner settings for a test)."""
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": quorum_voters(nodes),
        "listeners": f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.address}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.log_dir),
        **replication(len(nodes)),
        **SMALL_BOX,
        **(extra or {}),
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """A Java .properties file."""
    return "".join(f"{key}={value}\n" for key, value in properties.items())


LOG4J2 = """\
status = error
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""
"""log4j2 configuration: warnings and the started line, on the node's stdout (its log file)."""


def jvm_options(heap_max: str = DEFAULT_HEAP_MAX, heap_min: str = DEFAULT_HEAP_MIN) -> list[str]:
    """A small JVM: fixed small heap, serial GC, the client compiler only (less CPU at start)."""
    return [f"-Xmx{heap_max}", f"-Xms{heap_min}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-XX:MaxDirectMemorySize=256m", "-Djava.awt.headless=true"]
