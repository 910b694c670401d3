"""system.heartbeats, system.status -> the health fold (domain/ops/health.py) -> the health table."""

from __future__ import annotations

from faust import StreamT

from domain.fold import step
from domain.ops.health import evolve
from schemas.records import ComponentStatus, Heartbeat
from streams.faust.context import WorkerApp
from tables import health as glue

BEATS = "system.heartbeats"
STATUS = "system.status"


def install(app: WorkerApp) -> None:
    """Register the two health agents (one per input topic) and the health table."""
    table = glue.declare(app)

    @app.agent(app.typed_topics[BEATS].faust, name="health.heartbeats")
    async def fold_beats(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent="health.heartbeats"):
                beat = glue.beat_input(app.decode_valid(message.value, Heartbeat))
                state, _ = step(evolve, glue.load(table, beat), beat, message.partition, message.offset, BEATS)
                glue.store(table, state)
            app.count_processed("health.heartbeats")

    @app.agent(app.typed_topics[STATUS].faust, name="health.status")
    async def fold_status(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent="health.status"):
                change = glue.status_input(app.decode_valid(message.value, ComponentStatus))
                state, _ = step(evolve, glue.load(table, change), change, message.partition, message.offset, STATUS)
                glue.store(table, state)
            app.count_processed("health.status")
