"""Every worker says it is alive on system.heartbeats."""

from __future__ import annotations

import itertools
import os
import socket
import time

from schemas.records import Heartbeat, utc_now
from streams.app import TickTideApp

COMPONENT = "worker"


def install(app: TickTideApp) -> None:
    """Register the heartbeat timer."""
    sequence = itertools.count()
    topic = app.typed_topics["system.heartbeats"]

    @app.timer(interval=app.settings.heartbeat_period_s, name="system.heartbeat")
    async def beat() -> None:
        await topic.send(Heartbeat(
            envelope=Heartbeat.envelope_for(event_time=utc_now(), producer="agent.heartbeat"),
            component=COMPONENT,
            worker_id=app.settings.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            uptime_seconds=time.time() - app.started_at,
            events_processed=sum(app.processed.values()),
            sequence=next(sequence),
        ))
