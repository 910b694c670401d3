"""market.trades -> event-time candles (tables) -> market.candles, market.late.

The trade reader (streams/hotpath/reader.py) fetches the market.trades partitions Faust
assigns this worker (through the app's internal owners topic) and hands each run to the
candle driver (streams/hotpath/driver.py), which holds the whole contract: sequence and
gaps, one decode and fold per trade, outputs before progress, checkpoints and idle close.
A bad record is dead-lettered by the driver; a run that fails as a whole is read again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust import StreamT

from domain.market.candles import CandleFold
from streams.faust.context import WorkerApp
from streams.hotpath.driver import CandleDriver
from streams.hotpath.ports import Run
from streams.hotpath.trade_decoder import TickDecoder
from streams.kafka.admin import partition_count
from streams.validation import bounds_now
from tables import candles as glue

AGENT = "market.trades"


def install(app: WorkerApp) -> None:
    """Register the candle fold: the reader's handler, the partition hand-over and the timers."""
    settings = app.settings
    owners, reader = app.trade_owners, app.trade_reader
    ports = glue.CandleTables(app, owners.get_topic_name())
    fold = CandleFold(settings.window_specs, int(settings.grace_s * 1_000_000),
                      mark_step_us=int(settings.mark_interval_s * 1_000_000))
    driver = app.candle_driver = CandleDriver(fold, TickDecoder(app.codec), ports, settings.idle_close_s,
                                              settings.idle_close_all)

    @app.on_partitions_revoked.connect
    async def forget_on_rebalance(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        reader.release()
        driver.forget()
        await ports.settle()  # what is in flight reaches the broker before the partitions move

    @app.on_rebalance_complete.connect
    async def follow_assignment(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Faust has recovered the candle tables of its new assignment: read those partitions
        of market.trades from where their progress rows say."""
        if not driver.decoder.partitions:
            driver.decoder.partitions = await asyncio.to_thread(partition_count, settings, ports.source_topic)
        topic = owners.get_topic_name()
        owned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)
        driver.forget()
        reader.follow({partition: ports.progress(partition) + 1 for partition in owned})

    async def fold_run(run: Run) -> None:
        folded = await driver.on_run(run, bounds_now(settings.max_future_skew_s))
        for _, symbol in folded.late:
            app.metrics.late_trades.labels(symbol).inc()
        app.pipeline_latency.extend(folded.latencies_s)
        app.count_processed(AGENT, len(run.offsets))

    reader.on_run = fold_run

    @app.agent(owners, name=AGENT)
    async def candle_fold(stream: StreamT[bytes]) -> None:
        """The candle fold as Faust sees it: it holds the owners topic in Faust's subscription
        (its work is done by the reader's handler above). Nothing is sent to the topic; what
        is, is ignored."""
        async for _ in stream.events():
            pass

    @app.timer(interval=settings.checkpoint_s, name="market.checkpoint")
    async def checkpoint() -> None:
        """Write the rows changed since the last checkpoint (not while partitions move, nor
        sooner than the last one's cost allows)."""
        if not app.rebalancing and driver.checkpoint_due():
            await driver.checkpoint()

    @app.timer(interval=1.0, name="market.idle_close")
    async def close_idle_symbols() -> None:
        """Close the windows of quiet symbols (never while partitions move)."""
        if not app.rebalancing:
            await driver.close_idle()
