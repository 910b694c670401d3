"""market.candles -> the analysis fold (domain/analysis/series.py) -> analysis.indicators,
analysis.anomalies, and the indicators and anomalies tables.

Each candle is decoded and checked here (a bad one is dead-lettered), then folded by the
analysis driver (streams/hotpath/analysis_driver.py), which holds the contract: states in
memory, outputs sent without waiting for each, rows and progress at checkpoints, and the
candles after the last checkpoint folded again when a partition comes to this worker.
Candles of an interval not analysed (``analysis_intervals``) are read and passed over.
"""

from __future__ import annotations

import time
from typing import Any

from faust import StreamT

from domain.analysis.series import Analysis
from schemas.records import Candle
from streams.faust.context import WorkerApp
from streams.hotpath.analysis_driver import AnalysisDriver
from tables import analysis as glue

AGENT = "analysis.candles"
PRODUCER = "agent.analysis"


def install(app: WorkerApp) -> None:
    """Register the analysis agent and its checkpoint timer."""
    ports = glue.AnalysisTables(app, PRODUCER)
    driver = app.analysis_driver = AnalysisDriver(
        Analysis(PRODUCER), ports, lambda value: app.decode_valid(value, Candle), app.settings.analysed_intervals)

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        driver.forget()
        await ports.settle()  # what is in flight reaches the broker before the partitions move

    @app.on_rebalance_complete.connect
    async def forget_on_assignment(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        driver.forget()

    @app.agent(ports.source.faust, name=AGENT)
    async def analyse(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.retries.guard(message, agent=AGENT):
                await driver.on_candle(message.partition, message.offset, app.decode_valid(message.value, Candle))
            app.count_processed(AGENT)
            if message.time_in is not None:
                app.worker_status.observe_latency(AGENT, [time.monotonic() - message.time_in])

    @app.timer(interval=app.settings.checkpoint_s, name="analysis.checkpoint")
    async def checkpoint() -> None:
        """Write the rows changed since the last checkpoint (not while partitions move, nor
        sooner than the last one's cost allows)."""
        if not app.rebalancing and driver.checkpoint_due():
            await driver.checkpoint()
