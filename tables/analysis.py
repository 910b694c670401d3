"""Indicator and anomaly tables, keyed by symbol (co-partitioned with market.candles), and
the analysis driver's I/O through them.

* ``indicators``: symbol -> {interval: {"state": IndicatorState, "applied": [partition,
  offset] of the last market.candles record folded, "latest": snapshot JSON}}; and, under
  ``#partition/<p>``, how far the rows of source partition p hold its candles
  ({applied_through}), written after them in the same changelog partition.
* ``anomalies``: symbol -> the last N anomalies, oldest first

The driver (streams/hotpath/analysis_driver.py) writes the rows at its checkpoints through
``RowWriter`` (each row encoded once, sent through librdkafka) and its outputs through
librdkafka without waiting for each. Names and keys: tables/names.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from faust.types import TableT

from domain.analysis.series import Output
from schemas.records import Anomaly
from streams.errors import BrokerError
from streams.faust.context import WorkerApp
from streams.faust.table_rows import RowWriter
from streams.hotpath.encoders import AnomalyEncoder, SnapshotEncoder
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_partition
from tables import names
from tables.symbol_table import symbol_table

log = logging.getLogger(__name__)

OUTPUTS_PRODUCER = {"linger.ms": 5, "delivery.report.only.error": True}
"""Snapshots and anomalies are waited for once a checkpoint: only a failed one calls back."""


def declare(app: WorkerApp) -> tuple[TableT[str, Any], TableT[str, Any]]:
    """The indicator and anomaly tables."""
    return (symbol_table(app, names.INDICATORS, "Indicator state and latest snapshot per symbol."),
            symbol_table(app, names.ANOMALIES, "Recent anomalies per symbol."))


class AnalysisTables:
    """The analysis driver's I/O (``streams.hotpath.analysis_driver.AnalysisPorts``) in a worker."""

    def __init__(self, app: WorkerApp, producer: str) -> None:
        """``producer``: the analysis' (its outputs are written raw)."""
        self.app = app
        self.indicators, self.anomaly_rows = declare(app)
        self.source = app.typed_topics["market.candles"]
        self.snapshots_topic = app.typed_topics["analysis.indicators"]
        self.anomalies_topic = app.typed_topics["analysis.anomalies"]
        self.rows = RowWriter(app.settings, self.source.name)
        self.producer = EventProducer(app.settings, app.codec, **OUTPUTS_PRODUCER)
        self.snapshot_encoder = SnapshotEncoder(app.codec, producer)  # the outputs, written raw
        self.anomaly_encoder = AnomalyEncoder(app.codec, producer)

    def progress(self, partition: int) -> int | None:
        row = self.rows.read(self.indicators, partition, names.progress_key(partition))
        return None if row is None else names.applied_through(row)

    def row(self, partition: int, symbol: str) -> dict[str, Any]:
        row = self.rows.read(self.indicators, partition, symbol)
        return dict(row) if isinstance(row, dict) else {}

    def anomalies(self, partition: int, symbol: str) -> list[dict[str, Any]]:
        row = self.rows.read(self.anomaly_rows, partition, symbol)
        return [a for a in row if _event_id(a) is not None] if isinstance(row, list) else []

    async def read(self, partition: int, start: int, stop: int) -> list[tuple[int, bytes | None]]:
        settings, topic = self.app.settings, self.source.name
        return await asyncio.to_thread(
            lambda: [(raw.offset, raw.value) for raw in read_partition(settings, topic, partition, start, stop)])

    def send(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        encoded = []
        for output in outputs:  # all or nothing: a bad output must not leave the others sent
            topic, encoder = ((self.anomalies_topic, self.anomaly_encoder) if isinstance(output, Anomaly)
                              else (self.snapshots_topic, self.snapshot_encoder))
            topic.check(output)
            encoded.append((topic, topic.spec.key_of(output).encode(), encoder.encode(output)))
        for topic, key, value in encoded:
            self.producer.send_raw_many(topic.name, ((key, value),))
            self.app.metrics.events_sent.labels(topic.spec.name).inc()

    async def delivered(self) -> None:
        await asyncio.to_thread(self.producer.flush)  # BrokerError if any was not delivered
        await asyncio.to_thread(self.rows.flush)
        self.rows.record_persisted()

    async def settle(self) -> None:
        """Let outputs and rows in flight reach the broker (partitions are moving); a failure
        is only logged: the memory is forgotten already, the next owner folds again."""
        try:
            await self.delivered()
        except BrokerError as error:
            log.warning("analysis outputs or rows not delivered before a rebalance: %s", error)

    def write(self, partition: int, rows: dict[str, dict[str, Any]],
              anomalies: dict[str, list[dict[str, Any]]]) -> None:
        self.rows.write(self.indicators, partition, rows)
        self.rows.write(self.anomaly_rows, partition, anomalies)

    def write_progress(self, partition: int, applied_through: int) -> None:
        progress = {names.progress_key(partition): names.progress_row(applied_through)}
        self.rows.write(self.indicators, partition, progress)


def _event_id(anomaly: Any) -> Any:
    """An anomaly row's event id; None for anything that is not an anomaly's JSON."""
    envelope = anomaly.get("envelope") if isinstance(anomaly, dict) else None
    return envelope.get("event_id") if isinstance(envelope, dict) else None
