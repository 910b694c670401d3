"""system.retry -> the source topic again, once each record's backoff has passed."""

from __future__ import annotations

import asyncio
import time

from faust import StreamT

from domain.clock import to_micros
from domain.rules.deadletters import catalog_name
from schemas.records import DeadLetter
from streams.errors import InvalidInput
from streams.faust.context import WorkerApp
from streams.resilience.retry import ATTEMPT_HEADER, RETRY_TOPIC

AGENT = "system.retry"


def install(app: WorkerApp) -> None:
    """Register the retry agent."""
    prefix = app.settings.topic_prefix

    @app.agent(app.typed_topics[RETRY_TOPIC].faust, name=AGENT)
    async def retry(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=AGENT):
                letter = app.deadletters.codec.decode_as(message.value, DeadLetter)
                # the letter names its source topic: only this app's catalog topics (prefixed)
                name = catalog_name(letter.source_topic, prefix, app.typed_topics)
                if name is None or name == RETRY_TOPIC:
                    raise InvalidInput(f"source topic {letter.source_topic!r} is not a topic of this app")
                wait = app.retries.policy.wait_s(letter.attempt, to_micros(letter.envelope.event_time),
                                                 time.time_ns() // 1000)
                if wait > 0:
                    await asyncio.sleep(wait)
                await app.typed_topics[name].faust.send(
                    key=letter.original_key, value=letter.original_value,
                    headers={ATTEMPT_HEADER: str(max(1, letter.attempt) + 1).encode()})
                app.metrics.replayed.labels(name).inc()
            app.count_processed(AGENT)
