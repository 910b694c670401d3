"""Candle tables and the driver's I/O through them.

* ``candles``: symbol -> the symbol's open panes, event-time clock and the offset of the
  last trade applied (a ``domain.candles.SymbolCandles`` as JSON); and, under
  ``#partition/<p>``, how far the fold has got in source partition p ({applied_through}).
  The progress row lives in the same changelog partition as its symbols' rows and is
  written after them, so it is never ahead of them.
* ``candle_history``: symbol -> {interval: the last N final candles, oldest first}, each
  the comma-separated integers of its bar (rendered as a Candle when asked for).

Both are keyed by symbol like market.trades, so a symbol's rows live in the partition of
its trades and a web query for it is routed to the worker that owns it. The driver writes
them at each checkpoint, inside ``partition_scope`` (streams/faust/internals.py). Names
and keys: tables/names.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from faust.types import TableT

from domain.candles import CANDLE_PRODUCER, ClosedCandle, Tick, bar_text
from domain.marks import slice_marks
from streams.errors import InvalidValue
from streams.faust.context import WorkerApp
from streams.faust.internals import partition_scope
from streams.hotpath.batcher import SOURCE, unbatchable
from streams.hotpath.driver import Run
from streams.hotpath.encoders import CandleEncoder, MarkEncoder
from streams.kafka.admin import end_offsets
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_range
from streams.resilience.deadletter import RawRecord
from tables import names
from tables.symbol_table import symbol_table

AGENT = "market.trades"
HOT_PATH_PRODUCER = {"linger.ms": 2, "compression.type": "none"}
"""Outputs are small and waited for: send them at once, uncompressed."""


def declare(app: WorkerApp) -> tuple[TableT[str, Any], TableT[str, Any]]:
    """The candle tables, co-partitioned with market.trades (and the trade-batch topic)."""
    return (symbol_table(app, names.CANDLES, "Open windows and event-time clock per symbol."),
            symbol_table(app, names.CANDLE_HISTORY, "Recent final candles per symbol and interval."))


def history_start(item: str | dict[str, Any]) -> Any:
    """The window start of a history entry (a bar's text; a Candle's JSON in older rows)."""
    return int(item.split(",", 1)[0]) if isinstance(item, str) else item["window_start"]


class CandleTables:
    """The candle driver's I/O (``streams.hotpath.driver.CandlePorts``) in a worker."""

    def __init__(self, app: WorkerApp, batches_topic: str) -> None:
        self.app = app
        self.state, self.history = declare(app)
        self.batches_topic = batches_topic
        self.source_topic = app.typed_topics[SOURCE].name  # with the settings' topic prefix
        self.candles_topic = app.typed_topics["market.candles"].name
        self.late_topic = app.typed_topics["market.late"].name
        self.commands_topic = app.typed_topics["trading.commands"].name
        self.mark_encoder = MarkEncoder(app.codec)
        self.account = app.settings.trading_account.encode()  # marks: what the account's orders fill against
        self.mark_slice_us = int(app.settings.mark_interval_s * 1_000_000)
        self.encoder = CandleEncoder(app.codec, CANDLE_PRODUCER)
        # The hot path's outputs go through librdkafka: a record costs ~2 us there, ~30 in Faust's producer.
        self.producer = EventProducer(app.settings, app.codec, **HOT_PATH_PRODUCER)
        self.closed: dict[str, list[ClosedCandle]] = {}  # symbol -> final candles not yet in its history row

    def row(self, symbol: str) -> dict[str, Any] | None:
        return self.state.get(symbol)

    def progress(self, partition: int) -> int:
        row = self.state.get(names.progress_key(partition))
        return int(row["applied_through"]) if row else -1

    def symbol_rows(self) -> list[tuple[str, dict[str, Any]]]:
        return names.symbol_rows(self.state.items())

    def write(self, partition: int, rows: dict[str, dict[str, Any]], applied_through: int) -> None:
        with partition_scope(self.batches_topic, partition):
            for symbol, row in rows.items():
                self.state[symbol] = row
                candles = self.closed.pop(symbol, None)
                if candles:
                    self._remember(symbol, candles)
            self.state[names.progress_key(partition)] = {"applied_through": applied_through}

    def _remember(self, symbol: str, candles: list[ClosedCandle]) -> None:
        """Append final candles to the symbol's history, keeping the last N of each interval
        (a re-emitted candle replaces its earlier copy)."""
        keep = self.app.settings.candle_history
        row: dict[str, list[Any]] = dict(self.history.get(symbol) or {})
        for candle in candles:
            start = candle.bar.start_us
            series = [c for c in row.get(candle.interval, []) if history_start(c) != start]
            series.append(bar_text(candle.bar))
            row[candle.interval] = series[-keep:]
        self.history[symbol] = row

    def gap_found(self, partition: int) -> None:
        self.app.metrics.trade_batch_rereads.labels(str(partition)).inc()

    async def read(self, partition: int, start: int, stop: int) -> Run:
        settings = self.app.settings
        starts, stops = [0] * (partition + 1), [0] * (partition + 1)
        starts[partition], stops[partition] = start, stop
        missed = await asyncio.to_thread(lambda: list(read_range(settings, self.source_topic, starts, stops)))
        return Run(partition, start - 1, [r.offset for r in missed], [r.timestamp_ms for r in missed],
                   [r.key for r in missed],  # as the batcher forwards them: what it dead-letters itself as None
                   [None if unbatchable(r.key, r.value) else r.value for r in missed])

    async def end_offsets(self, partitions: set[int]) -> dict[int, int]:
        known = self.app.trade_batcher.ends()  # free: what the batcher's fetches saw
        if partitions <= known.keys():
            return known
        return dict(enumerate(await asyncio.to_thread(end_offsets, self.app.settings, self.source_topic)))

    async def send(self, closed: list[ClosedCandle], ticks: list[Tick], late: list[RawRecord]) -> None:
        ingest_us = time.time_ns() // 1000
        sent = 0
        for candle in closed:
            try:
                value = self.encoder.encode(candle, ingest_us)
            except InvalidValue as error:  # never sent, so no offset: named by its topic and key
                await self.dead_letter(RawRecord(self.candles_topic, 0, 0, candle.symbol.encode(),
                                                 bar_text(candle.bar).encode()), error)
                continue
            self.producer.send_raw(self.candles_topic, candle.symbol.encode(), value)
            self.closed.setdefault(candle.symbol, []).append(candle)
            sent += 1
        for record in late:
            self.producer.send_raw(self.late_topic, record.key, record.value)
        marks = 0
        for mark in slice_marks(ticks, self.mark_slice_us):
            try:
                value = self.mark_encoder.encode(mark, ingest_us)
            except InvalidValue as error:
                await self.dead_letter(RawRecord(self.commands_topic, 0, 0, self.account, None), error)
                continue
            self.producer.send_raw(self.commands_topic, self.account, value)
            marks += 1
        counts = {"market.candles": sent, "market.late": len(late), "trading.commands": marks}
        for topic, count in counts.items():
            self.app.metrics.events_sent.labels(topic).inc(count)

    async def delivered(self) -> None:
        await asyncio.to_thread(self.producer.flush)  # BrokerError if any was not delivered

    async def dead_letter(self, record: RawRecord, error: Exception) -> None:
        await self.app.deadletters.send(record, agent=AGENT, error=error)
