"""`ticktide broker`: the embedded broker (default) or an Apache Kafka cluster in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Literal, Protocol

import typer

from streams.devstack.broker import EmbeddedBroker, free_port
from streams.devstack.kafka_cluster import KafkaCluster


class _Running(Protocol):
    def wait(self) -> int: ...


def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (Kafka: node i on PORT+i-1); 0 picks a free one")]
    = 9092,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    engine: Annotated[Literal["embedded", "kafka"], typer.Option(
        help="embedded: Tansu, in memory, no JVM; kafka: Apache Kafka 4.x (KRaft; Java 17, jars via Maven)")]
    = "embedded",
    nodes: Annotated[int, typer.Option(min=1, max=9, help="Kafka nodes (each controller and broker)")] = 1,
    data_dir: Annotated[Path | None, typer.Option(help="Kafka data directory (default: a temporary one)")] = None,
) -> None:
    """Run a broker until Ctrl-C/SIGTERM: the embedded Tansu, or an Apache Kafka cluster."""
    if engine == "kafka":
        _run_kafka(port, host, nodes, data_dir)
        return
    embedded = EmbeddedBroker(port or free_port(host), host)
    embedded.start()
    typer.echo(f"broker ready at {embedded.bootstrap}  (export TICKTIDE_BROKER={embedded.bootstrap})")
    _until_stopped(embedded)
    embedded.stop()
    typer.echo("broker stopped")


def _run_kafka(port: int, host: str, nodes: int, data_dir: Path | None) -> None:
    cluster = KafkaCluster(nodes, port or None, host, data_dir)
    try:
        cluster.start()
        for node in cluster.nodes:
            typer.echo(f"node {node.node_id} pid {cluster.pid(node.node_id)} listening {node.address}")
        typer.echo(f"bootstrap {cluster.bootstrap}  (export TICKTIDE_BROKER={cluster.bootstrap}"
                   f" TICKTIDE_BROKER_FLAVOR=kafka TICKTIDE_REPLICATION_FACTOR={min(nodes, 3)})")
        _until_stopped(cluster)
    finally:
        cluster.stop()
    typer.echo("kafka stopped")


def _until_stopped(running: _Running) -> None:
    """Block until Ctrl-C, SIGTERM, or the broker exits by itself."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def watch() -> None:
        running.wait()
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    stop.wait()
