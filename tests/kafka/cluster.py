"""Helpers of the Apache Kafka tests: a cluster of the test's own, real recorded trades sent
at a pace from a thread (so a node can die while they flow), and figures to report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.records import Event, Trade
from streams.devstack.kafka_cluster import KafkaCluster
from streams.ingest import ParsedRow, read_trades
from streams.kafka.admin import create_topics, end_offsets
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.kafka.registry import registry_for
from streams.settings import Settings
from tests.harness import DATA, REPO, WorkerProcess, free_port_run, http_json, settings_for

REAL = DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz"
FIGURES = REPO / ".ticktide" / "kafka-figures.jsonl"
"""Where the tests append what they measured (failover times, duplicates), one JSON a line."""


def start_cluster(directory: Path, nodes: int, **extra: str) -> KafkaCluster:
    """A cluster of ``nodes`` on free ports, data and logs under ``directory``."""
    cluster = KafkaCluster(nodes, free_port_run(nodes), data_dir=directory / "kafka", extra=extra)
    cluster.start()
    return cluster


def cluster_settings(cluster: KafkaCluster, tmp_path: Path, **extra: Any) -> Settings:
    """Settings on ``cluster`` (replicated as far as it goes) with the catalog's topics created."""
    settings = settings_for(cluster, tmp_path, replication_factor=min(cluster.count, 3), **extra)
    create_topics(settings)
    return settings


def real_trades() -> list[Trade]:
    """The recorded Binance trades (BTCUSDT and ETHUSDT, 24,356), in arrival order."""
    return [row.event for row in read_trades(REAL, "binance-ws") if isinstance(row, ParsedRow)]


class PacedProducer(threading.Thread):
    """Sends trades in chunks with a pause between them; ``sent`` counts the trades handed
    over so far; the producer is idempotent with acks=all (``EventProducer``), and the
    thread ends with every trade acknowledged or with ``error`` set."""

    def __init__(self, settings: Settings, trades: list[Trade], chunk: int = 250, pause_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.settings, self.trades, self.chunk, self.pause_s = settings, trades, chunk, pause_s
        self.sent = 0
        self.acknowledged = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with EventProducer(self.settings) as producer:
                for start in range(0, len(self.trades), self.chunk):
                    for trade in self.trades[start:start + self.chunk]:
                        producer.send("market.trades", trade)
                    self.sent = min(start + self.chunk, len(self.trades))
                    time.sleep(self.pause_s)
                self.acknowledged = producer.flush(120)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float = 300) -> int:
        """Wait for the end; the number of trades acknowledged (raises what the thread raised)."""
        self.join(timeout)
        assert not self.is_alive(), "the producer did not finish"
        if self.error is not None:
            raise self.error
        return self.acknowledged


def busiest_partition(settings: Settings, topic: str) -> tuple[int, str]:
    """The partition of ``topic`` with the most records, and the key of its last record."""
    ends = end_offsets(settings, topic)
    partition = max(range(len(ends)), key=lambda p: ends[p])
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"probe-{time.time_ns()}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, partition, ends[partition] - 1)])
        message = consumer.poll(10)
        assert message is not None and message.error() is None, "no last record on the busiest partition"
        return partition, (message.key() or b"").decode()
    finally:
        consumer.close()


def event_ids(settings: Settings, topic: str, isolation: str = "read_committed",
              kinds: tuple[type[Event], ...] = (Event,),
              id_of: Callable[[Event], str | None] = lambda event: event.envelope.event_id) -> Counter[str]:
    """How often each event id (or other ``id_of``) of the ``kinds`` given is stored on ``topic``,
    as a consumer of ``isolation`` sees it (read_committed: what a transaction aborted is not
    there), read from the beginning until the topic has been quiet for 3 s."""
    codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"dups-{time.time_ns()}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(len(end_offsets(settings, topic)))])
        seen: Counter[str] = Counter()
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 3:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            quiet_since = time.monotonic()
            event = codec.decode(message.value())
            found = id_of(event) if isinstance(event, kinds) else None
            if found is not None:
                seen[found] += 1
        return seen
    finally:
        consumer.close()


def duplicates(settings: Settings, topic: str, isolation: str = "read_committed",
               kinds: tuple[type[Event], ...] = (Event,)) -> tuple[int, int]:
    """(records, records whose event id was already seen) on ``topic``: an event sent twice
    (a retried produce, an output re-emitted after a crash) keeps its id."""
    seen = event_ids(settings, topic, isolation, kinds)
    return sum(seen.values()), sum(n - 1 for n in seen.values())


def settle(settings: Settings, topics: tuple[str, ...], quiet_s: float = 8, timeout: float = 180) -> None:
    """Wait until no record has been added to ``topics`` for ``quiet_s`` (at most ``timeout``):
    the figures are then counted on what the worker finished."""
    last: tuple[int, ...] = ()
    changed = started = time.monotonic()
    while time.monotonic() - started < timeout and time.monotonic() - changed < quiet_s:
        now = tuple(sum(end_offsets(settings, topic)) for topic in topics)
        if now != last:
            last, changed = now, time.monotonic()
        time.sleep(1)


LOG_FINDINGS = re.compile(r"\b(ERROR|CRITICAL|Traceback|[Ff]enced|ProducerFenced|[Tt]ransaction\w*Error|"
                          r"InvalidProducerEpoch|OutOfOrderSequence|ProducerSendError)\b")


def log_findings(*logs: Path) -> dict[str, Any]:
    """What a worker's log says went wrong: how many such lines, and the first few kinds."""
    lines = [line for log in logs if log.exists()
             for line in log.read_text(errors="replace").splitlines() if LOG_FINDINGS.search(line)]
    kinds = list(dict.fromkeys(re.sub(r"\d+", "N", line.split("]", 2)[-1].strip())[:160] for line in lines))
    fenced = sum(1 for line in lines if re.search(r"[Ff]enced|[Tt]ransaction", line))
    return {"log_error_lines": len(lines), "log_fenced_or_transaction_lines": fenced, "log_error_kinds": kinds[:6]}


def report(name: str, **figures: Any) -> None:
    """Print a test's figures (``-s`` shows them) and append them to FIGURES."""
    line = json.dumps({"test": name, **figures})
    print(f"\nFIGURES {line}")
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a") as out:
        out.write(line + "\n")


def stall_evidence(worker: WorkerProcess) -> str:
    """What a worker that stopped moving says about itself, for a failure message: its /health
    (the trade reader's assignment, lag and read count) and, where py-spy is installed, a dump
    of every thread's stack (which await or call it sits in)."""
    try:
        health = json.dumps(http_json(f"{worker.url}/health")[1], indent=1)
    except OSError as error:
        health = f"no answer: {error}"
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        stacks = "py-spy not installed"
    else:
        dumped = subprocess.run([spy, "dump", "--pid", str(worker.process.pid)], capture_output=True,
                                text=True, timeout=60, check=False)
        stacks = dumped.stdout + dumped.stderr
    return f"/health: {health}\nstacks (py-spy dump):\n{stacks}\nlog:\n{worker.tail()}"
