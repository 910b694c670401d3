"""market.trades -> event-time candles (tables) -> market.candles, market.late.

The hot path works in batches of one partition's events: decode each trade straight to
a Tick, fold it into its symbol's state, then (1) send the closed candles, late trades
and dead letters and wait until the broker has them, (2) write each touched symbol's row
once. A crash between (1) and (2) re-emits candles with the same ids; a crash after (2)
finds the trades already applied (their offsets are in the rows). Nothing is lost, and
nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faust import StreamT
from faust.types import EventT

from domain import candles as fold
from schemas.records import utc_now
from streams.admin import end_offsets
from streams.app import TickTideApp
from streams.errors import BrokerError, DecodeError
from streams.ticks import TickDecoder
from tables import candles as glue

AGENT = "market.trades"
log = logging.getLogger(__name__)
SOURCE = "market.trades"
PRODUCER = "agent.market"


def install(app: TickTideApp) -> None:
    """Register the candle agent, its tables and the idle-close timer."""
    state_table, history_table = glue.declare(app)
    decoder = TickDecoder(app.codec)
    specs = app.settings.window_specs
    grace_us = int(app.settings.grace_s * 1_000_000)
    seen: dict[int, int] = {}  # partition -> last offset this worker folded
    rows_lock = asyncio.Lock()  # the agent and the idle timer both read-modify-write rows
    candles_topic = app.typed_topics["market.candles"]
    late_topic = app.typed_topics["market.late"]

    async def publish(closed: list[fold.ClosedCandle], late: list[Any]) -> None:
        """Send final candles and late trades; return once the broker has them all."""
        now = utc_now()
        records = [(c, fold.candle_record(c, PRODUCER, now)) for c in closed]
        pending = [await candles_topic.send_pending(record) for _, record in records]
        pending += [await late_topic.faust.send(key=m.key, value=m.value) for m in late]
        if pending:
            await asyncio.gather(*pending)
        if records:
            glue.remember_closed(history_table, records, app.settings.candle_history)

    async def fold_partition(events: list[EventT[Any]]) -> None:
        seen[events[0].message.partition] = events[-1].message.offset
        states: dict[str, fold.SymbolCandles] = {}
        closed: list[fold.ClosedCandle] = []
        late: list[Any] = []
        for event in events:
            message = event.message
            try:
                tick = decoder.decode(message.value)
            except DecodeError as error:
                await app.deadletters.send(message, agent=AGENT, error=error)
                continue
            state = states.get(tick.symbol)
            if state is None:
                state = states[tick.symbol] = glue.load(state_table, tick.symbol)
            outcome, done = fold.apply_trade(state, tick, specs, grace_us, message.partition,
                                             message.offset)
            if outcome is fold.Outcome.LATE:
                late.append(message)
                app.metrics.late_trades.labels(tick.symbol).inc()
            closed.extend(done)
        with glue.partition_scope(SOURCE, events[0].message.partition):
            await publish(closed, late)
            now_us = time.time_ns() // 1000
            for symbol, state in states.items():
                state_table[symbol] = fold.to_row(state, now_us)
        arrived = [e.message.time_in for e in events if e.message.time_in is not None]
        now = time.monotonic()
        latencies = [now - t for t in arrived]
        app.pipeline_latency.extend(latencies)
        for latency in latencies[:: max(1, len(latencies) // 50)]:
            app.metrics.trade_to_candle_seconds.observe(latency)
        app.count_processed(AGENT, len(events))

    @app.agent(app.typed_topics[SOURCE].faust, name=AGENT)
    async def candles(stream: StreamT[bytes]) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]  # in faust, not its stubs
            app.settings.batch_max, within=app.settings.batch_wait_s)
        async for batch in batches:
            by_partition: dict[int, list[EventT[Any]]] = {}
            for event in batch:
                by_partition.setdefault(event.message.partition, []).append(event)
            async with rows_lock:
                for events in by_partition.values():
                    await fold_partition(events)

    @app.timer(interval=1.0, name="market.idle_close")
    async def close_idle_symbols() -> None:
        """Close every window of a symbol that has had no trade for idle_close_s, once
        this worker has read its partition to the end (a worker catching up on a backlog
        must not close windows that later records still fill)."""
        async with rows_lock:
            try:
                await close_quiet_rows()
            except BrokerError as error:  # ops: a busy broker must not crash the worker; retry next tick
                log.warning("idle close skipped: %s", error)

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
            with glue.partition_scope(SOURCE, partition):
                await publish(fold.close_all(state), [])
                state_table[symbol] = fold.to_row(state, row["updated_at_us"])
