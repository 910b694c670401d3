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
them at each checkpoint, inside ``partition_scope``.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from faust.streams import _current_event
from faust.types import TableT

from domain.candles import CANDLE_PRODUCER, ClosedCandle, Tick, bar_text
from streams.errors import InvalidValue
from streams.faust.app import TickTideApp
from streams.hotpath.batcher import SOURCE, unbatchable
from streams.hotpath.candle_encoder import CandleEncoder
from streams.hotpath.driver import PROGRESS_PREFIX, Run
from streams.kafka.admin import end_offsets
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_range
from streams.resilience.deadletter import RawRecord
from tables.keyed import symbol_table

STATE = "candles"
HISTORY = "candle_history"
AGENT = "market.trades"


def declare(app: TickTideApp) -> tuple[TableT[str, Any], TableT[str, Any]]:
    """The candle tables, co-partitioned with market.trades (and the trade-batch topic)."""
    return (symbol_table(app, STATE, "Open windows and event-time clock per symbol."),
            symbol_table(app, HISTORY, "Recent final candles per symbol and interval."))


class _PartitionMarker:
    """Stands in for Faust's current event: what a table write needs is its partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition)


@contextmanager
def partition_scope(topic: str, partition: int) -> Iterator[None]:
    """Route table writes to ``partition`` (of the tables' source topic ``topic``).

    Faust takes the partition of a table write from the current stream event, which a
    batched fold or a timer does not have; the rows we write belong to the partition of
    the source records they were folded from, so we say so explicitly."""
    marker = _PartitionMarker(topic, partition)
    token = _current_event.set(weakref.ref(marker))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def history_start(item: str | dict[str, Any]) -> Any:
    """The window start of a history entry (a bar's text; a Candle's JSON in older rows)."""
    return int(item.split(",", 1)[0]) if isinstance(item, str) else item["window_start"]


HOT_PATH_PRODUCER = {"linger.ms": 2, "compression.type": "none"}
"""Outputs are small and waited for: send them at once, uncompressed."""


class CandleTables:
    """The candle driver's I/O (``streams.hotpath.driver.CandlePorts``) in a worker."""

    def __init__(self, app: TickTideApp, batches_topic: str) -> None:
        self.app = app
        self.state, self.history = declare(app)
        self.batches_topic = batches_topic
        self.source_topic = app.typed_topics[SOURCE].name  # with the settings' topic prefix
        self.candles_topic = app.typed_topics["market.candles"].name
        self.late_topic = app.typed_topics["market.late"].name
        self.encoder = CandleEncoder(app.codec, CANDLE_PRODUCER)
        # The hot path's outputs go through librdkafka: a record costs ~2 us there, ~30 in Faust's producer.
        self.producer = EventProducer(app.settings, app.codec, **HOT_PATH_PRODUCER)
        self.closed: dict[str, list[ClosedCandle]] = {}  # symbol -> final candles not yet in its history row

    def row(self, key: str) -> dict[str, Any] | None:
        return self.state.get(key)

    def symbol_rows(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, row) for key, row in self.state.items() if not key.startswith(PROGRESS_PREFIX)]

    def write(self, partition: int, rows: dict[str, dict[str, Any]]) -> None:
        with partition_scope(self.batches_topic, partition):
            for key, row in rows.items():
                self.state[key] = row
                candles = self.closed.pop(key, None)
                if candles:
                    self._remember(key, candles)

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

    async def read(self, partition: int, start: int, stop: int) -> Run:
        self.app.metrics.trade_batch_rereads.labels(str(partition)).inc()
        settings = self.app.settings
        starts, stops = [0] * (partition + 1), [0] * (partition + 1)
        starts[partition], stops[partition] = start, stop
        missed = await asyncio.to_thread(lambda: list(read_range(settings, self.source_topic, starts, stops)))
        return Run(partition, start - 1, [r.offset for r in missed], [r.timestamp_ms for r in missed],
                   [r.key for r in missed],  # as the batcher forwards them: what it dead-letters itself as None
                   [None if unbatchable(r.key, r.value) else r.value for r in missed])

    async def end_offsets(self) -> list[int]:
        return list(await asyncio.to_thread(end_offsets, self.app.settings, self.source_topic))

    async def publish(self, closed: list[ClosedCandle], ticks: list[Tick], late: list[RawRecord]) -> None:
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
        if sent or late:
            await asyncio.to_thread(self.producer.flush)  # BrokerError if any was not delivered
            self.app.metrics.events_sent.labels("market.candles").inc(sent)
            self.app.metrics.events_sent.labels("market.late").inc(len(late))

    async def dead_letter(self, record: RawRecord, error: Exception) -> None:
        await self.app.deadletters.send(record, agent=AGENT, error=error)
