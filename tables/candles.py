"""Candle tables and the driver's I/O through them.

* ``candles``: symbol -> the symbol's open panes, event-time clock and the offset of the
  last trade applied (a ``domain.market.candles.SymbolCandles`` as JSON); and, under
  ``#partition/<p>``, how far the fold has got in source partition p ({applied_through}).
  The progress row lives in the same changelog partition as its symbols' rows and is
  written after them, so it is never ahead of them.
* ``candle_history``: the last N final candles of each symbol and interval, in blocks.
  Window ``i`` of a family (its start // step) belongs to block ``i // BLOCK``, and a block
  is one row under ring slot ``block % ring_blocks(N)``: its candles' bar texts (the
  comma-separated integers of each bar, rendered as a Candle when asked for), oldest
  first, joined by ``;``. A checkpoint rewrites each block it adds final candles to, so a
  symbol costs one row per interval and checkpoint, not one per candle (with 5,000
  symbols, most of the rows the fold wrote). The ring holds one block more than N needs,
  so the newest N windows are never on a slot a later lap has taken; every text starts
  with its window's start, so a reader keeps only the candles of the block and window it
  asks for, never an older lap's.

Rows live in the partition of their symbol's trades (a web query for a symbol is routed to
the worker that owns it). The driver writes them at each checkpoint through ``RowWriter``
(streams/faust/table_rows.py): thousands of rows a second at librdkafka's price, not
Faust's. Names and keys: tables/names.py.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from faust.types import TableT

from domain.market.bars import Bar
from domain.market.candle_rows import bar_from_text, bar_text
from domain.market.candles import CANDLE_PRODUCER, ClosedCandle
from domain.market.marks import MarkSlice
from domain.market.windows import WindowSpec
from streams.errors import BrokerError, InvalidValue
from streams.faust.context import WorkerApp
from streams.faust.table_rows import RowWriter
from streams.hotpath.encoders import CandleEncoder, MarkEncoder
from streams.hotpath.ports import FinalCandle, Run
from streams.hotpath.reader import SOURCE
from streams.kafka.admin import end_offsets
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_partition
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


BLOCK = 16
"""Windows per history row."""
SEPARATOR = ";"
"""Between the bar texts of a row (a bar text is comma-separated integers)."""

Read = Callable[[str], str | None]
"""A history row by key (None if there is none)."""


def ring_blocks(keep: int) -> int:
    """Rows in the ring of a symbol and interval that keeps ``keep`` windows."""
    return -(-keep // BLOCK) + 1


def start_of(text: str) -> int | None:
    """The window start of a bar text; None for anything else (a row on the changelog is
    written by whoever can write to it: a malformed one is passed over, then replaced)."""
    try:
        return int(text.split(",", 1)[0])
    except ValueError:
        return None


def texts_of(row: Any) -> dict[int, str]:
    """The bar texts of a history row by window start, in the row's order."""
    if not isinstance(row, str):
        return {}
    return {start: text for text in row.split(SEPARATOR) if (start := start_of(text)) is not None}


def history_rows(read: Read, symbol: str, finals: Iterable[tuple[WindowSpec, int, str]], keep: int) -> dict[str, str]:
    """The history rows after adding a symbol's final candles (``read`` gives the rows as
    they are): each block they fall in, with the candles it held of the same block (a
    re-emitted candle replaces its copy; an older lap's are dropped, and candles a later lap
    has passed are not written). A final is (window family, window start, bar text)."""
    blocks: dict[tuple[str, int], tuple[WindowSpec, dict[int, str]]] = {}
    for spec, start, text in finals:
        block = start // spec.step_us // BLOCK
        blocks.setdefault((spec.name, block), (spec, {}))[1][start] = text
    rows: dict[str, str] = {}
    for (_, block), (spec, texts) in blocks.items():
        key = names.history_key(symbol, spec.name, block % ring_blocks(keep))
        held = texts_of(rows.get(key) or read(key))
        if any(start // spec.step_us // BLOCK > block for start in held):
            continue  # a later lap holds the slot: these windows are older than any N shown
        kept = {start: text for start, text in held.items() if start // spec.step_us // BLOCK == block}
        kept.update(texts)
        rows[key] = SEPARATOR.join(kept[start] for start in sorted(kept))
    return rows


def recent_history(read: Read, symbol: str, spec: WindowSpec, newest_us: int, keep: int, limit: int) -> list[Bar]:
    """Up to ``limit`` final candles of ``spec`` (their bars, oldest first) among the ``keep``
    windows starting at or before ``newest_us`` (a time no closed window starts after). A
    text that is not a bar (whoever can write to the changelog can put it there) is passed
    over: it never fails the view that asked."""
    newest = newest_us // spec.step_us
    oldest = newest - keep + 1
    found: list[Bar] = []
    for block in range(newest // BLOCK, oldest // BLOCK - 1, -1):
        row = texts_of(read(names.history_key(symbol, spec.name, block % ring_blocks(keep))))
        for start, text in reversed(row.items()):
            index, offset = divmod(start, spec.step_us)
            if offset == 0 and oldest <= index <= newest and index // BLOCK == block:
                try:
                    bar = bar_from_text(text)
                except (ValueError, TypeError):
                    continue
                if bar.end_us != start + spec.size_us:
                    continue
                found.append(bar)
                if len(found) == limit:
                    return found[::-1]
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
        self.closed: dict[str, list[FinalCandle]] = {}  # symbol -> final candles not yet in its history row

    def row(self, symbol: str) -> dict[str, Any] | None:
        return self.state.get(symbol)

    def progress(self, partition: int) -> int:
        row = self.state.get(names.progress_key(partition))
        return -1 if row is None else names.applied_through(row)

    def symbol_rows(self) -> list[tuple[str, dict[str, Any]]]:
        return names.symbol_rows(self.state.items())

    def take_finals(self, symbol: str) -> list[FinalCandle]:
        return self.closed.pop(symbol, [])

    def forget_finals(self) -> None:
        self.closed.clear()

    def write(self, partition: int, rows: dict[str, dict[str, Any]],
              finals: dict[str, list[FinalCandle]]) -> None:
        history: dict[str, str] = {}
        read = functools.partial(self.rows.read, self.history, partition)
        for symbol, candles in finals.items():
            history.update(history_rows(read, symbol,
                                        ((self.specs[interval], start, text) for interval, start, text in candles),
                                        self.keep))
        self.rows.write(self.history, partition, history)
        self.rows.write(self.state, partition, rows)

    def write_progress(self, partition: int, applied_through: int) -> None:
        self.rows.write(self.state, partition, {names.progress_key(partition): names.progress_row(applied_through)})

    def gap_found(self, partition: int) -> None:
        self.app.metrics.trade_gap_reads.labels(str(partition)).inc()

    async def read(self, partition: int, start: int, stop: int) -> Run:
        settings, topic = self.app.settings, self.source_topic
        missed = await asyncio.to_thread(lambda: list(read_partition(settings, topic, partition, start, stop)))
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
            bar = candle.bar
            self.closed.setdefault(candle.symbol, []).append((candle.interval, bar.start_us, bar_text(bar)))
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
