"""Candle tables and the driver's I/O through them.

* ``candles``: symbol -> the symbol's open panes, event-time clock and the offset of the
  last trade applied (a ``domain.candles.SymbolCandles`` as JSON); and, under
  ``#partition/<p>``, how far the fold has got in source partition p ({applied_through}).
  The progress row lives in the same changelog partition as its symbols' rows and is
  written after them, so it is never ahead of them.
* ``candle_history``: the last N final candles of each symbol and interval, as a ring: the
  candle of window start s is in slot ``(s // step) % N``, one small row per candle, the
  comma-separated integers of its bar (rendered as a Candle when asked for). A final
  candle costs one row, however long the history.

Rows live in the partition of their symbol's trades (a web query for a symbol is routed to
the worker that owns it). The driver writes them at each checkpoint through ``RowWriter``
(streams/faust/table_rows.py): thousands of rows a second at librdkafka's price, not
Faust's. Names and keys: tables/names.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust.types import TableT

from domain.candle_rows import bar_text
from domain.candles import CANDLE_PRODUCER, ClosedCandle
from domain.marks import MarkSlice
from domain.windows import WindowSpec
from streams.errors import BrokerError, InvalidValue
from streams.faust.context import WorkerApp
from streams.faust.table_rows import RowWriter
from streams.hotpath.encoders import CandleEncoder, MarkEncoder
from streams.hotpath.ports import Run
from streams.hotpath.reader import SOURCE
from streams.kafka.admin import end_offsets
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_range
from streams.resilience.deadletter import RawRecord
from tables import names
from tables.symbol_table import symbol_table

log = logging.getLogger(__name__)

AGENT = "market.trades"
HOT_PATH_PRODUCER = {"linger.ms": 2, "compression.type": "none", "delivery.report.only.error": True}
"""Outputs are small and waited for: send them at once, uncompressed; only a failed one
calls back into Python (``flush`` raises it), not each of the thousands a second delivered."""


def declare(app: WorkerApp) -> tuple[TableT[str, Any], TableT[str, Any]]:
    """The candle tables, co-partitioned with market.trades (and its owners topic)."""
    return (symbol_table(app, names.CANDLES, "Open windows and event-time clock per symbol."),
            symbol_table(app, names.CANDLE_HISTORY, "Recent final candles per symbol and interval."))


def history_start(item: str) -> int:
    """The window start of a history entry (a bar's text)."""
    return int(item.split(",", 1)[0])


def history_slot(start_us: int, spec: WindowSpec, keep: int) -> int:
    """The ring slot of the window starting at ``start_us``."""
    return (start_us // spec.step_us) % keep


def recent_history(history: TableT[str, Any], symbol: str, spec: WindowSpec, newest_us: int, keep: int,
                   limit: int) -> list[str]:
    """Up to ``limit`` final candles of ``spec`` (bar texts, oldest first) among the ``keep``
    windows starting at or before ``newest_us`` (a time no closed window starts after)."""
    newest = newest_us // spec.step_us
    found: list[str] = []
    for index in range(newest, newest - keep, -1):
        text = history.get(names.history_key(symbol, spec.name, index % keep))
        if text is not None and history_start(text) == index * spec.step_us:  # not an older lap's
            found.append(text)
            if len(found) == limit:
                break
    return found[::-1]


class CandleTables:
    """The candle driver's I/O (``streams.hotpath.driver.CandlePorts``) in a worker."""

    def __init__(self, app: WorkerApp, owners_topic: str) -> None:
        self.app = app
        self.state, self.history = declare(app)
        self.source_topic = app.typed_topics[SOURCE].name  # with the settings' topic prefix
        self.candles_topic = app.typed_topics["market.candles"].name
        self.late_topic = app.typed_topics["market.late"].name
        self.commands_topic = app.typed_topics["trading.commands"].name
        self.mark_encoder = MarkEncoder(app.codec)
        self.account = app.settings.trading_account.encode()  # marks: what the account's orders fill against
        self.encoder = CandleEncoder(app.codec, CANDLE_PRODUCER)
        self.specs = {spec.name: spec for spec in app.settings.window_specs}
        self.keep = app.settings.candle_history
        self.rows = RowWriter(app.settings, owners_topic)
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

    def take_finals(self, symbol: str) -> list[ClosedCandle]:
        return self.closed.pop(symbol, [])

    def write(self, partition: int, rows: dict[str, dict[str, Any]],
              finals: dict[str, list[ClosedCandle]]) -> None:
        history: dict[str, str] = {}
        for symbol, candles in finals.items():
            for candle in candles:  # a re-emitted candle takes its own slot again
                slot = history_slot(candle.bar.start_us, self.specs[candle.interval], self.keep)
                history[names.history_key(symbol, candle.interval, slot)] = bar_text(candle.bar)
        self.rows.write(self.history, partition, history)
        self.rows.write(self.state, partition, rows)

    def write_progress(self, partition: int, applied_through: int) -> None:
        self.rows.write(self.state, partition, {names.progress_key(partition): {"applied_through": applied_through}})

    def gap_found(self, partition: int) -> None:
        self.app.metrics.trade_gap_reads.labels(str(partition)).inc()

    async def read(self, partition: int, start: int, stop: int) -> Run:
        settings = self.app.settings
        starts, stops = [0] * (partition + 1), [0] * (partition + 1)
        starts[partition], stops[partition] = start, stop
        missed = await asyncio.to_thread(lambda: list(read_range(settings, self.source_topic, starts, stops)))
        return Run(partition, start - 1, [r.offset for r in missed], [r.timestamp_ms for r in missed],
                   [r.key for r in missed], [r.value for r in missed])

    async def end_offsets(self, partitions: set[int]) -> dict[int, int]:
        known = self.app.trade_reader.ends()  # free: what the reader's fetches saw
        if partitions <= known.keys():
            return known
        return dict(enumerate(await asyncio.to_thread(end_offsets, self.app.settings, self.source_topic)))

    async def send(self, closed: list[ClosedCandle], marks: list[MarkSlice], late: list[RawRecord]) -> None:
        ingest_us = time.time_ns() // 1000
        candles: list[tuple[bytes, bytes]] = []
        for candle in closed:
            try:
                candles.append((candle.symbol.encode(), self.encoder.encode(candle, ingest_us)))
            except InvalidValue as error:  # never sent, so no offset: named by its topic and key
                await self.dead_letter(RawRecord(self.candles_topic, 0, 0, candle.symbol.encode(),
                                                 bar_text(candle.bar).encode()), error)
                continue
            self.closed.setdefault(candle.symbol, []).append(candle)
        mark_values: list[tuple[bytes, bytes]] = []
        for mark in marks:
            try:
                mark_values.append((self.account, self.mark_encoder.encode(mark, ingest_us)))
            except InvalidValue as error:
                await self.dead_letter(RawRecord(self.commands_topic, 0, 0, self.account, None), error)
        send = self.producer.send_raw_many
        counts = {"market.candles": send(self.candles_topic, candles),
                  "market.late": send(self.late_topic, ((r.key, r.value) for r in late)),
                  "trading.commands": send(self.commands_topic, mark_values)}
        for topic, count in counts.items():
            self.app.metrics.events_sent.labels(topic).inc(count)

    async def delivered(self) -> None:
        await asyncio.to_thread(self.producer.flush)  # BrokerError if any was not delivered
        await asyncio.to_thread(self.rows.flush)  # the last checkpoint's rows
        self.rows.record_persisted()

    async def settle(self) -> None:
        """Let outputs and rows in flight reach the broker (partitions are moving); a failure
        is only logged: the memory is forgotten already, the next owner re-folds."""
        try:
            await self.delivered()
        except BrokerError as error:
            log.warning("candle outputs or rows not delivered before a rebalance: %s", error)

    async def dead_letter(self, record: RawRecord, error: Exception) -> None:
        await self.app.deadletters.send(record, agent=AGENT, error=error)
