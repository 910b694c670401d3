"""market.candles -> the analysis fold (domain/analysis.py) -> analysis.indicators,
analysis.anomalies, and the indicators and anomalies tables.

Decode, skip a candle of an interval not analysed (``analysis_intervals``), step the
series' fold, send its outputs and wait for the broker, then write the row (with the
position applied): a crash in between re-emits the same events (ids derive
from the candle), and a re-delivered or re-emitted candle changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from faust import StreamT

from domain.analysis import Analysis, AnalysisInput, Output
from domain.fold import step
from schemas.records import Anomaly, Candle, utc_now
from streams.faust.context import WorkerApp
from tables import analysis as glue

AGENT = "analysis.candles"
PRODUCER = "agent.analysis"


def install(app: WorkerApp) -> None:
    """Register the analysis agent and its tables."""
    indicators, anomalies = glue.declare(app)
    fold = Analysis(PRODUCER)
    snapshots_topic = app.typed_topics["analysis.indicators"]
    anomalies_topic = app.typed_topics["analysis.anomalies"]

    async def publish(outputs: Sequence[Output]) -> None:
        """Send the outputs; return once the broker has them all."""
        pending = [await (anomalies_topic if isinstance(o, Anomaly) else snapshots_topic).send_pending(o)
                   for o in outputs]
        await asyncio.gather(*pending)

    wanted = app.settings.analysed_intervals

    @app.agent(app.typed_topics["market.candles"].faust, name=AGENT)
    async def analyse(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.retries.guard(message, agent=AGENT):
                candle = app.decode_valid(message.value, Candle)
                if candle.interval not in wanted:
                    app.count_processed(AGENT)
                    continue  # read, not analysed (settings.analysis_intervals)
                state = glue.load(indicators, candle.symbol, candle.interval)
                held = state.applied
                state, outputs = step(fold.evolve, state, AnalysisInput(candle, utc_now()),
                                      message.partition, message.offset)
                await publish(outputs)
                if state.applied != held:
                    glue.store(indicators, anomalies, candle.symbol, candle.interval, state, outputs)
            app.count_processed(AGENT)
            if message.time_in is not None:
                app.worker_status.observe_latency(AGENT, [time.monotonic() - message.time_in])
