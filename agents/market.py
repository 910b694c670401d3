"""market.trades -> event-time candles (tables) -> market.candles, market.late.

The hot path works on TradeBatch records: each worker's batcher (streams/batcher.py)
forwards the untouched market.trades records of a partition as one record of the same
partition of the app's internal trade-batch topic, so Faust's per-event machinery runs
once per batch, not once per trade. For each batch: check that it follows on from what
was applied (else fetch the skipped batches from the broker), decode each trade straight
to a Tick, fold it into its symbol's state, then (1) send the closed candles, late trades
and dead letters and wait until the broker has them, (2) write each touched symbol's row
once, then the partition's progress row. A crash between (1) and (2) re-emits candles
with the same ids; a crash after (2) finds the trades already applied (their offsets are
in the rows). Nothing is lost, and nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust import StreamT

from domain import candles as fold
from schemas.records import TradeBatch, utc_now
from streams.admin import end_offsets
from streams.app import TickTideApp
from streams.batcher import SOURCE, TradeBatcher, batch_topic
from streams.consumer import read_range
from streams.deadletter import RawRecord
from streams.errors import BrokerError, DecodeError, OutOfSequence
from streams.ticks import TickDecoder
from tables import candles as glue

AGENT = "market.trades"
PRODUCER = "agent.market"
log = logging.getLogger(__name__)


def install(app: TickTideApp) -> None:
    """Register the batcher, the candle agent, its tables and the idle-close timer."""
    state_table, history_table = glue.declare(app)
    decoder = TickDecoder(app.codec)
    specs = app.settings.window_specs
    grace_us = int(app.settings.grace_s * 1_000_000)
    rows_lock = asyncio.Lock()  # the agent and the idle timer both read-modify-write rows
    source_topic = app.typed_topics[SOURCE].name  # with the settings' topic prefix
    batches = batch_topic(app)
    batches_topic = batches.get_topic_name()
    candles_topic = app.typed_topics["market.candles"]
    late_topic = app.typed_topics["market.late"]
    app.trade_batcher = TradeBatcher(app)
    app.service(app.trade_batcher)  # type: ignore[arg-type]  # an instance is accepted

    async def publish(closed: list[fold.ClosedCandle], late: list[RawRecord]) -> None:
        """Send final candles and late trades; return once the broker has them all."""
        now = utc_now()
        records = [(c, fold.candle_record(c, PRODUCER, now)) for c in closed]
        pending = [await candles_topic.send_pending(record) for _, record in records]
        pending += [await late_topic.faust.send(key=r.key, value=r.value) for r in late]
        if pending:
            await asyncio.gather(*pending)
        if records:
            glue.remember_closed(history_table, records, app.settings.candle_history)

    async def fold_batch(batch: TradeBatch, batch_offset: int) -> None:
        partition = batch.source_partition
        states: dict[str, fold.SymbolCandles] = {}
        closed: list[fold.ClosedCandle] = []
        late: list[RawRecord] = []
        for offset, key, value in zip(batch.offsets, batch.keys, batch.values, strict=True):
            try:
                tick = decoder.decode(value)
            except DecodeError as error:
                await app.deadletters.send(RawRecord(source_topic, partition, offset, key, value),
                                           agent=AGENT, error=error)
                continue
            state = states.get(tick.symbol)
            if state is None:
                state = states[tick.symbol] = glue.load(state_table, tick.symbol)
            outcome, done = fold.apply_trade(state, tick, specs, grace_us, partition, offset)
            if outcome is fold.Outcome.LATE:
                late.append(RawRecord(source_topic, partition, offset, key, value))
                app.metrics.late_trades.labels(tick.symbol).inc()
            closed.extend(done)
        with glue.partition_scope(batches_topic, partition):
            await publish(closed, late)
            now_us = time.time_ns() // 1000
            for symbol, state in states.items():
                state_table[symbol] = fold.to_row(state, now_us)
            state_table[glue.progress_key(partition)] = {"applied_through": batch.offsets[-1],
                                                         "batch_offset": batch_offset}
        latency = max(0.0, time.time() - batch.fetched_at.timestamp())
        app.pipeline_latency.extend([latency] * len(batch.offsets))
        app.metrics.trade_to_candle_seconds.observe(latency)
        app.count_processed(AGENT, len(batch.offsets))

    async def fill_gap(partition: int, progress: dict[str, int] | None, batch_offset: int) -> int:
        """Trades are missing before the batch at ``batch_offset`` (its consumer skipped
        records): read the batches after the last one applied straight from the broker and
        fold those that follow on. The last source offset applied afterwards."""
        start = progress["batch_offset"] + 1 if progress else 0
        applied_through = progress["applied_through"] if progress else -1
        log.warning("%s[%s]: batches %s..%s were not delivered; reading them from the broker",
                    batches_topic, partition, start, batch_offset - 1)
        app.metrics.trade_batch_rereads.labels(str(partition)).inc()
        for offset, value in await asyncio.to_thread(read_range, app.settings, batches_topic, partition,
                                                     start, batch_offset):
            try:
                missed = app.codec.decode_as(value, TradeBatch)
            except DecodeError:
                continue  # it was dead-lettered when delivered, or will be
            if missed.offsets and missed.follows_offset <= applied_through < missed.offsets[-1]:
                await fold_batch(missed, offset)
                applied_through = missed.offsets[-1]
        return applied_through

    @app.agent(batches, name=AGENT)
    async def candles(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            try:
                batch = app.codec.decode_as(message.value, TradeBatch)
            except DecodeError as error:
                await app.deadletters.send(message, agent=AGENT, error=error)
                continue
            if not batch.offsets:
                continue
            async with rows_lock:
                progress = state_table.get(glue.progress_key(batch.source_partition))
                applied_through = progress["applied_through"] if progress else -1
                if batch.follows_offset > applied_through:
                    applied_through = await fill_gap(batch.source_partition, progress, message.offset)
                if batch.follows_offset > applied_through:
                    await app.deadletters.send(message, agent=AGENT, reason="out_of_sequence",
                                               error=OutOfSequence(batch.follows_offset, applied_through))
                    continue
                await fold_batch(batch, message.offset)

    @app.timer(interval=1.0, name="market.idle_close")
    async def close_idle_symbols() -> None:
        """Close every window of a symbol that has had no trade for idle_close_s, once
        this worker has read its partition to the end (a worker catching up on a backlog
        must not close windows that later records still fill). Never during a rebalance:
        the rows may be in recovery."""
        if getattr(app, "rebalancing", False) or not quiet_rows():
            return
        try:  # outside the lock: this may take seconds while a partition is busy
            ends = await asyncio.to_thread(end_offsets, app.settings, source_topic)
        except BrokerError as error:
            log.warning("idle close skipped this time: %s", error)
            return
        async with rows_lock:
            for symbol, row in quiet_rows():
                partition = row["source_partition"]
                progress = state_table.get(glue.progress_key(partition))
                if progress is None or ends[partition] > progress["applied_through"] + 1:
                    continue  # not folded to the true end of market.trades yet
                state = fold.from_row(row)
                with glue.partition_scope(batches_topic, partition):
                    await publish(fold.close_all(state), [])
                    state_table[symbol] = fold.to_row(state, row["updated_at_us"])

    def quiet_rows() -> list[tuple[str, dict[str, Any]]]:
        """Rows with open windows and no trade for idle_close_s."""
        cutoff = time.time_ns() // 1000 - int(app.settings.idle_close_s * 1_000_000)
        return [(symbol, row) for symbol, row in glue.symbol_rows(state_table)
                if any(row["bars"].values()) and row["updated_at_us"] <= cutoff]
