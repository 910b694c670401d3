"""market.trades -> event-time candles (tables) -> market.candles, market.late.

The hot path works on TradeBatch records: each worker's batcher (streams/batcher.py)
forwards the untouched market.trades records of a partition as one record of the same
partition of market.trade_batches, so Faust's per-event machinery runs once per batch, not
once per trade. For each batch: decode each trade straight to a Tick, fold it into its
symbol's state, then (1) send the closed candles, late trades and dead letters and wait
until the broker has them, (2) write each touched symbol's row once. A crash between (1)
and (2) re-emits candles with the same ids; a crash after (2) finds the trades already
applied (their offsets are in the rows). Nothing is lost, and nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import time

from faust import StreamT
from faust.types import TP

from domain import candles as fold
from schemas.records import TradeBatch, utc_now
from streams.admin import end_offsets
from streams.app import TickTideApp
from streams.batcher import BATCHES, SOURCE, TradeBatcher
from streams.deadletter import RawRecord
from streams.errors import DecodeError, OutOfSequence
from streams.ticks import TickDecoder
from tables import candles as glue

AGENT = "market.trades"
PRODUCER = "agent.market"
REWIND_ATTEMPTS = 3
log = logging.getLogger(__name__)


def install(app: TickTideApp) -> None:
    """Register the batcher, the candle agent, its tables and the idle-close timer."""
    state_table, history_table, progress_table = glue.declare(app)
    decoder = TickDecoder(app.codec)
    specs = app.settings.window_specs
    grace_us = int(app.settings.grace_s * 1_000_000)
    seen: dict[int, int] = {}  # partition -> last source offset this worker folded
    rows_lock = asyncio.Lock()  # the agent and the idle timer both read-modify-write rows
    gaps: dict[int, tuple[int, int]] = {}  # partition -> (offset of the batch after a gap, re-reads)
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
                await app.deadletters.send(RawRecord(SOURCE, partition, offset, key, value),
                                           agent=AGENT, error=error)
                continue
            state = states.get(tick.symbol)
            if state is None:
                state = states[tick.symbol] = glue.load(state_table, tick.symbol)
            outcome, done = fold.apply_trade(state, tick, specs, grace_us, partition, offset)
            if outcome is fold.Outcome.LATE:
                late.append(RawRecord(SOURCE, partition, offset, key, value))
                app.metrics.late_trades.labels(tick.symbol).inc()
            closed.extend(done)
        with glue.partition_scope(BATCHES, partition):
            await publish(closed, late)
            now_us = time.time_ns() // 1000
            for symbol, state in states.items():
                state_table[symbol] = fold.to_row(state, now_us)
            progress_table[str(partition)] = {"applied_through": batch.offsets[-1],
                                              "batch_offset": batch_offset}
        seen[partition] = max(seen.get(partition, -1), batch.offsets[-1])
        latency = max(0.0, time.time() - batch.fetched_at.timestamp())
        app.pipeline_latency.extend([latency] * len(batch.offsets))
        app.metrics.trade_to_candle_seconds.observe(latency)
        app.count_processed(AGENT, len(batch.offsets))

    async def rewind(partition: int, progress: dict[str, int] | None, batch: TradeBatch,
                     batch_offset: int) -> bool:
        """Trades are missing before this batch: re-read the partition from the batch after
        the last one applied (batches buffered behind this one are skipped: they come
        again). False when REWIND_ATTEMPTS re-reads have not filled the gap: the batch is
        out of sequence for good."""
        at, rereads = gaps.get(partition, (batch_offset, 0))
        if batch_offset > at:
            return True
        if batch_offset < at:
            rereads = 0
        if rereads >= REWIND_ATTEMPTS:
            del gaps[partition]
            return False
        gaps[partition] = (batch_offset, rereads + 1)
        target = progress["batch_offset"] + 1 if progress else 0
        log.error("trades %s..%s of %s[%s] are missing before this batch; re-reading %s[%s] from %s",
                  (progress or {}).get("applied_through", -1) + 1, batch.follows_offset, SOURCE,
                  partition, BATCHES, partition, target)
        app.metrics.trade_batch_rewinds.labels(str(partition)).inc()
        await app.consumer.seek(TP(BATCHES, partition), target)
        return True

    @app.agent(app.typed_topics[BATCHES].faust, name=AGENT)
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
                progress = progress_table.get(str(batch.source_partition))
                applied_through = progress["applied_through"] if progress else -1
                if batch.follows_offset > applied_through:
                    if not await rewind(batch.source_partition, progress, batch, message.offset):
                        await app.deadletters.send(message, agent=AGENT, reason="out_of_sequence",
                                                   error=OutOfSequence(batch.follows_offset, applied_through))
                    continue
                gaps.pop(batch.source_partition, None)
                await fold_batch(batch, message.offset)

    @app.timer(interval=1.0, name="market.idle_close")
    async def close_idle_symbols() -> None:
        """Close every window of a symbol that has had no trade for idle_close_s, once
        this worker has read its partition to the end (a worker catching up on a backlog
        must not close windows that later records still fill). Never during a rebalance:
        the rows may be in recovery."""
        if getattr(app, "rebalancing", False):
            return
        async with rows_lock:
            await close_quiet_rows()

    async def close_quiet_rows() -> None:
        cutoff = time.time_ns() // 1000 - int(app.settings.idle_close_s * 1_000_000)
        rows = list(state_table.items())
        quiet = [(symbol, row) for symbol, row in rows
                 if any(row["bars"].values()) and row["updated_at_us"] <= cutoff]
        if not quiet:
            return
        read_up_to = dict(seen)
        for _, row in rows:
            partition = row["source_partition"]
            read_up_to[partition] = max(read_up_to.get(partition, -1), row["source_offset"])
        # The consumer's own highwater can be stale after a rebalance (a partition owned
        # briefly earlier): ask the broker for the true end of each partition instead.
        ends = await asyncio.to_thread(end_offsets, app.settings, SOURCE)
        for symbol, row in quiet:
            partition = row["source_partition"]
            if ends[partition] > read_up_to[partition] + 1:
                continue
            state = fold.from_row(row)
            with glue.partition_scope(BATCHES, partition):
                await publish(fold.close_all(state), [])
                state_table[symbol] = fold.to_row(state, row["updated_at_us"])
