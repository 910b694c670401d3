"""market.trades -> event-time candles (tables) -> market.candles, market.late.

Each worker's batcher (streams/hotpath/batcher.py) forwards the untouched market.trades
records of a partition as one TradeBatch record to the same partition of the app's internal
trade-batch topic, so Faust's per-event machinery runs once per batch, not once per trade.
This agent checks each batch and hands it to the candle driver (streams/hotpath/driver.py),
which holds the whole contract: sequence and gaps, one decode and fold per trade, outputs
before progress, checkpoints and idle close. A batch that fails as a whole is dead-lettered;
its trades are read again from market.trades as the gap before the next batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust import StreamT

from domain.candles import CandleFold
from schemas.records import TradeBatch
from streams.errors import BrokerError, DecodeError, InvalidValue, OutOfSequence
from streams.faust.context import WorkerApp
from streams.hotpath.batcher import SOURCE
from streams.hotpath.driver import CandleDriver, Run
from streams.hotpath.trade_decoder import TickDecoder
from streams.kafka.admin import partition_count
from streams.validation import bounds_now, checked
from tables import candles as glue

AGENT = "market.trades"


def install(app: WorkerApp) -> None:
    """Register the candle agent, its driver and timers (the trade batcher that feeds it is a
    worker service: streams/worker.py)."""
    settings = app.settings
    batches = app.trade_batches
    ports = glue.CandleTables(app, batches.get_topic_name())
    fold = CandleFold(settings.window_specs, int(settings.grace_s * 1_000_000))
    driver = app.candle_driver = CandleDriver(fold, TickDecoder(app.codec), ports, settings.idle_close_s)

    @app.on_partitions_revoked.connect
    async def forget_on_rebalance(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        driver.forget()
        await ports.settle()  # what is in flight reaches the broker before the partitions move

    @app.agent(batches, name=AGENT)
    async def candles(stream: StreamT[bytes]) -> None:
        driver.decoder.partitions = await asyncio.to_thread(partition_count, settings, ports.source_topic)
        async for event in stream.events():
            message = event.message
            try:
                batch = checked(app.codec.decode_as(message.value, TradeBatch), settings.max_future_skew_s,
                                bound_times=False)
                if (batch.source_topic, batch.source_partition) != (SOURCE, message.partition):
                    raise InvalidValue("source_partition", f"is not {SOURCE}[{message.partition}], the partition "
                                       f"this batch was sent to: {batch.source_topic}[{batch.source_partition}]")
            except (DecodeError, InvalidValue) as error:
                await app.deadletters.send(message, agent=AGENT, error=error)
                continue
            if not batch.offsets:
                continue
            run = Run(batch.source_partition, batch.follows_offset, batch.offsets, batch.timestamps_ms,
                      batch.keys, batch.values)
            try:
                folded = await driver.on_run(run, bounds_now(settings.max_future_skew_s))
            except Exception as error:
                # Its trades stay unapplied: the next batch finds the gap and reads them
                # from market.trades (never this batch again), or is dead-lettered too.
                reason = "out_of_sequence" if isinstance(error, OutOfSequence | BrokerError) else None
                await app.deadletters.send(message, agent=AGENT, error=error, reason=reason)
                continue
            for _, symbol in folded.late:
                app.metrics.late_trades.labels(symbol).inc()
            app.pipeline_latency.extend(folded.latencies_s)
            observe = app.metrics.trade_to_candle_seconds.observe
            for seconds in folded.latencies_s:
                observe(seconds)
            app.count_processed(AGENT, len(batch.offsets))

    @app.timer(interval=settings.checkpoint_s, name="market.checkpoint")
    async def checkpoint() -> None:
        """Write the rows changed since the last checkpoint (not while partitions move)."""
        if not app.rebalancing:
            await driver.checkpoint()

    @app.timer(interval=1.0, name="market.idle_close")
    async def close_idle_symbols() -> None:
        """Close the windows of quiet symbols (never while partitions move)."""
        if not app.rebalancing:
            await driver.close_idle()
