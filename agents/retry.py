"""system.retry -> the source topic again, once each record's backoff has passed."""

from __future__ import annotations

import asyncio
import time

from faust import StreamT

from domain.clock import to_micros
from schemas.records import DeadLetter
from streams.app import TickTideApp
from streams.retry import ATTEMPT_HEADER, RETRY_TOPIC

AGENT = "system.retry"


def install(app: TickTideApp) -> None:
    """Register the retry agent."""

    @app.agent(app.typed_topics[RETRY_TOPIC].faust, name=AGENT)
    async def retry(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=AGENT):
                letter = app.deadletters.codec.decode_as(message.value, DeadLetter)
                due_us = to_micros(letter.envelope.event_time) + int(
                    app.retries.policy.delay_after(letter.attempt) * 1_000_000)
                wait = due_us / 1_000_000 - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                target = app.typed_topics[letter.source_topic].faust
                await target.send(key=letter.original_key, value=letter.original_value,
                                  headers={ATTEMPT_HEADER: str(letter.attempt + 1).encode()})
                app.metrics.replayed.labels(letter.source_topic).inc()
            app.count_processed(AGENT)
