"""market.candles -> indicators and anomalies (tables) -> analysis.indicators, .anomalies.

Each final candle is folded into its series' indicator state. Outputs are sent and
acknowledged by the broker before the state is written, and a candle at or before the
series' last applied window is ignored, so a crash or a re-emitted candle changes nothing.
"""

from __future__ import annotations

import asyncio
import time

from faust import StreamT

from domain.analysis import anomaly_record, snapshot_record
from domain.anomalies import AnomalyRules, detect
from domain.indicators import IndicatorConfig, apply_candle
from schemas.records import Candle, utc_now
from streams.faust.context import WorkerApp
from tables import analysis as glue

AGENT = "analysis.candles"
PRODUCER = "agent.analysis"


def install(app: WorkerApp) -> None:
    """Register the analysis agent and its tables."""
    indicators, anomalies = glue.declare(app)
    config, rules = IndicatorConfig(), AnomalyRules()
    snapshots_topic = app.typed_topics["analysis.indicators"]
    anomalies_topic = app.typed_topics["analysis.anomalies"]

    @app.agent(app.typed_topics["market.candles"].faust, name=AGENT)
    async def analyse(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.retries.guard(message, agent=AGENT):
                candle = app.decode_valid(message.value, Candle)
                previous = glue.load_state(indicators, candle.symbol, candle.interval)
                state, values = apply_candle(previous, candle, config)
                if values is not None:
                    now = utc_now()
                    snapshot = snapshot_record(candle, values, PRODUCER, now)
                    found = [anomaly_record(candle, f, PRODUCER, now)
                             for f in detect(previous, candle, values, rules)]
                    pending = [await snapshots_topic.send_pending(snapshot)]
                    pending += [await anomalies_topic.send_pending(a) for a in found]
                    await asyncio.gather(*pending)
                    glue.store(indicators, anomalies, state, snapshot, found)
            app.count_processed(AGENT)
            if message.time_in is not None:
                app.worker_status.observe_latency(AGENT, [time.monotonic() - message.time_in])
