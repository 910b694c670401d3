"""system.heartbeats, system.status -> the health table (domain.health fold)."""

from __future__ import annotations

from faust import StreamT

from schemas.records import ComponentStatus, Heartbeat
from streams.faust.context import WorkerApp
from tables import health as glue

BEATS = "system.heartbeats"
STATUS = "system.status"


def install(app: WorkerApp) -> None:
    """Register the two health agents and the health table."""
    table = glue.declare(app)

    @app.agent(app.typed_topics[BEATS].faust, name="health.heartbeats")
    async def fold_beats(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            async with app.deadletters.guard(event.message, agent="health.heartbeats"):
                glue.record_beat(table, app.decode_valid(event.message.value, Heartbeat))
            app.count_processed("health.heartbeats")

    @app.agent(app.typed_topics[STATUS].faust, name="health.status")
    async def fold_status(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            async with app.deadletters.guard(event.message, agent="health.status"):
                glue.record_status(table, app.decode_valid(event.message.value, ComponentStatus))
            app.count_processed("health.status")
