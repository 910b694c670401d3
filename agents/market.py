"""market.trades -> event-time candles (tables) -> market.candles, market.late.

The hot path works on TradeBatch records: each worker's batcher (streams/hotpath/batcher.py)
forwards the untouched market.trades records of a partition as one record of the same
partition of the app's internal trade-batch topic, so Faust's per-event machinery runs
once per batch, not once per trade. For each batch: check that it follows on from what
was applied (else read the skipped trades from market.trades), decode each trade straight
to a Tick and check it (domain/validity.py), fold it into its symbol's state, then (1) send
the closed candles and late trades and wait until the broker has them, (2) write each
touched symbol's row once, then the partition's progress row.

One bad record costs one record: a trade that cannot be decoded, breaks the Trade rules
or raises in the fold is dead-lettered and the rest of its batch goes on; a batch that
fails as a whole is dead-lettered; its trades are read again from market.trades as the
gap before the next batch, never by re-reading the batch, so nothing loops.

A crash between (1) and (2) re-emits candles with the same ids; a crash after (2) finds
the trades already applied (their offsets are in the rows). Nothing is lost, and nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from faust import StreamT

from domain import candles as fold
from schemas.records import TradeBatch, utc_now
from streams.errors import BrokerError, DecodeError, InvalidValue, OutOfSequence
from streams.faust.context import WorkerApp
from streams.hotpath.batcher import SOURCE, unbatchable
from streams.hotpath.trade_decoder import TickDecoder
from streams.kafka.admin import end_offsets, partition_count
from streams.kafka.ranges import read_range
from streams.resilience.deadletter import RawRecord
from streams.validation import bounds_now, checked
from tables import candles as glue

AGENT = "market.trades"
PRODUCER = "agent.market"
log = logging.getLogger(__name__)


def install(app: WorkerApp) -> None:
    """Register the candle agent, its tables and the idle-close timer (the trade batcher that
    feeds it is a worker service: streams/worker.py)."""
    state_table, history_table = glue.declare(app)
    decoder = TickDecoder(app.codec)
    specs = app.settings.window_specs
    grace_us = int(app.settings.grace_s * 1_000_000)
    rows_lock = asyncio.Lock()  # the agent and the idle timer both read-modify-write rows
    source_topic = app.typed_topics[SOURCE].name  # with the settings' topic prefix
    batches = app.trade_batches
    batches_topic = batches.get_topic_name()
    candles_topic = app.typed_topics["market.candles"]
    late_topic = app.typed_topics["market.late"]

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
        bounds = bounds_now(app.settings.max_future_skew_s)
        states: dict[str, fold.SymbolCandles] = {}
        closed: list[fold.ClosedCandle] = []
        late: list[RawRecord] = []
        rejected: list[tuple[RawRecord, Exception]] = []
        for offset, timestamp_ms, key, value in zip(batch.offsets, batch.timestamps_ms, batch.keys, batch.values,
                                                    strict=True):
            if value is None:
                continue  # the batcher dead-lettered this record itself (a tombstone, too large)
            try:
                tick = decoder.decode_checked(value, timestamp_ms, partition, bounds)
                state = states.get(tick.symbol)
                if state is None:
                    state = states[tick.symbol] = glue.load(state_table, tick.symbol)
                outcome, done = fold.apply_trade(state, tick, specs, grace_us, partition, offset)
            except Exception as error:  # this record only: the rest of the batch goes on
                rejected.append((RawRecord(source_topic, partition, offset, key, value), error))
                continue
            if outcome is fold.Outcome.LATE:
                late.append(RawRecord(source_topic, partition, offset, key, value))
                app.metrics.late_trades.labels(tick.symbol).inc()
            closed.extend(done)
        for record, problem in rejected:
            await app.deadletters.send(record, agent=AGENT, error=problem)
        with glue.partition_scope(batches_topic, partition):
            await publish(closed, late)
            now_us = time.time_ns() // 1000
            for symbol, state in states.items():
                state_table[symbol] = fold.to_row(state, now_us)
            record_progress(partition, batch.offsets[-1], batch_offset)
        latency = max(0.0, time.time() - batch.fetched_at.timestamp())
        app.pipeline_latency.extend([latency] * len(batch.offsets))
        app.metrics.trade_to_candle_seconds.observe(latency)
        app.count_processed(AGENT, len(batch.offsets))

    def record_progress(partition: int, applied_through: int, batch_offset: int) -> None:
        """How far the fold has got in a source partition (inside its partition scope)."""
        state_table[glue.progress_key(partition)] = {"applied_through": applied_through,
                                                     "batch_offset": batch_offset}

    async def fill_gap(batch: TradeBatch, applied_through: int, batch_offset: int) -> None:
        """Trades before ``batch`` were never delivered in a batch (Faust's consumer can skip
        records around a rebalance, a batch can fail): read them straight from market.trades
        and fold them as one batch. OutOfSequence if they do not exist, BrokerError if they
        cannot be read."""
        partition, start, stop = batch.source_partition, applied_through + 1, batch.follows_offset + 1
        app.metrics.trade_batch_rereads.labels(str(partition)).inc()
        ends = await asyncio.to_thread(end_offsets, app.settings, source_topic)
        if stop > ends[partition]:  # a forged batch: never wait for trades that do not exist
            raise OutOfSequence(batch.follows_offset, applied_through)
        log.warning("%s[%s]: trades %s..%s were not delivered in a batch; reading them from %s",
                    batches_topic, partition, start, stop - 1, source_topic)
        starts, stops = [0] * len(ends), [0] * len(ends)
        starts[partition], stops[partition] = start, stop
        missed = await asyncio.to_thread(lambda: list(read_range(app.settings, source_topic, starts, stops)))
        if not missed:
            raise OutOfSequence(batch.follows_offset, applied_through)
        await fold_batch(replace(  # as the batcher forwards them: what it dead-letters itself as None
            batch, follows_offset=applied_through, offsets=[r.offset for r in missed],
            timestamps_ms=[r.timestamp_ms for r in missed], keys=[r.key for r in missed],
            values=[None if unbatchable(r.key, r.value) else r.value for r in missed]), batch_offset - 1)

    async def fold_in_sequence(batch: TradeBatch, batch_offset: int) -> None:
        """Fold ``batch`` after whatever is missing before it."""
        progress = state_table.get(glue.progress_key(batch.source_partition))
        applied_through = progress["applied_through"] if progress else -1
        if batch.follows_offset > applied_through:
            await fill_gap(batch, applied_through, batch_offset)
        await fold_batch(batch, batch_offset)

    @app.agent(batches, name=AGENT)
    async def candles(stream: StreamT[bytes]) -> None:
        decoder.partitions = await asyncio.to_thread(partition_count, app.settings, source_topic)
        async for event in stream.events():
            message = event.message
            try:
                batch = checked(app.codec.decode_as(message.value, TradeBatch), app.settings.max_future_skew_s,
                                bound_times=False)
                if (batch.source_topic, batch.source_partition) != (SOURCE, message.partition):
                    raise InvalidValue("source_partition", f"is not {SOURCE}[{message.partition}], the partition "
                                       f"this batch was sent to: {batch.source_topic}[{batch.source_partition}]")
            except (DecodeError, InvalidValue) as error:
                await app.deadletters.send(message, agent=AGENT, error=error)
                continue
            if not batch.offsets:
                continue
            async with rows_lock:
                try:
                    await fold_in_sequence(batch, message.offset)
                except Exception as error:
                    # Its trades stay unapplied: the next batch finds the gap and reads them
                    # from market.trades (never this batch again), or is dead-lettered too.
                    reason = "out_of_sequence" if isinstance(error, OutOfSequence | BrokerError) else None
                    await app.deadletters.send(message, agent=AGENT, error=error, reason=reason)

    @app.timer(interval=1.0, name="market.idle_close")
    async def close_idle_symbols() -> None:
        """Close every window of a symbol that has had no trade for idle_close_s, once
        this worker has read its partition to the end (a worker catching up on a backlog
        must not close windows that later records still fill). Never during a rebalance:
        the rows may be in recovery."""
        if app.rebalancing or not quiet_rows():
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
