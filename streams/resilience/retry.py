"""The error policy every agent can use: transient failures are retried with backoff
through system.retry (bounded attempts), permanent ones go to system.deadletter.

    async for event in stream.events():
        async with app.retries.guard(event.message, agent="analysis.candles"):
            ...

A failed record travels to system.retry as a DeadLetter (reason ``transient``, its
attempt number); agents/system/retry.py waits until it is due and re-sends its original bytes
to the source topic with a ``ticktide-attempt`` header, so the owning agent tries again
(agents are idempotent: rule 4). After the last attempt it is dead-lettered with reason
``retries_exhausted``. Retried records lose their order relative to later ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from faust.types import TopicT
from prometheus_client import Counter as Metric

from domain.ops.retry import RetryPolicy
from streams.errors import TransientError
from streams.resilience.deadletter import DeadLetters, SourceRecord, dead_letter_for, reason_for

log = logging.getLogger(__name__)
RETRY_TOPIC = "system.retry"
ATTEMPT_HEADER = "ticktide-attempt"
TRANSIENT = (TransientError, TimeoutError, asyncio.TimeoutError, ConnectionError)


def is_transient(error: BaseException) -> bool:
    """Whether trying again later may succeed."""
    return isinstance(error, TRANSIENT)


def attempt_of(record: Any) -> int:
    """The attempt number a record is on (1 unless re-sent by the retry agent)."""
    headers = getattr(record, "headers", None) or ()
    items = headers.items() if isinstance(headers, dict) else headers
    for name, value in items:
        if name == ATTEMPT_HEADER:
            try:
                return max(1, int(value))
            except (TypeError, ValueError):
                return 1
    return 1


class Retries:
    """Routes an agent's failures: retry topic or dead-letter topic."""

    def __init__(self, policy: RetryPolicy, deadletters: DeadLetters, topic: TopicT, metric: Metric,
                 count_error: Callable[[str], None]) -> None:
        """``topic``: system.retry; ``metric``: the counter labelled by agent; ``count_error``:
        where an agent's failures are counted (the worker's status)."""
        self.policy = policy
        self.deadletters = deadletters
        self.topic = topic
        self.metric = metric
        self.count_error = count_error
        self.counts: Counter[str] = Counter()

    async def failed(self, record: SourceRecord, *, agent: str, error: BaseException) -> None:
        """Send a failed record on: another try later, or the dead-letter topic."""
        attempt, transient = attempt_of(record), is_transient(error)
        if not self.policy.should_retry(transient, attempt):
            reason = "retries_exhausted" if transient else reason_for(error)
            await self.deadletters.send(record, agent=agent, error=error, reason=reason, attempt=attempt)
            return
        self.counts[agent] += 1
        self.count_error(agent)
        self.metric.labels(agent).inc()
        letter = dead_letter_for(record, agent=agent, reason="transient", error=error,
                                 producer=f"agent.{agent}", attempt=attempt)
        log.info("retrying %s[%s]@%s (%s) after attempt %d: %s", record.topic, record.partition,
                 record.offset, agent, attempt, error)
        await self.topic.send(key=record.topic.encode(), value=self.deadletters.codec.encode(letter))

    @asynccontextmanager
    async def guard(self, record: SourceRecord, *, agent: str) -> AsyncIterator[None]:
        """Run the body; on an exception retry or dead-letter ``record`` and carry on."""
        try:
            yield
        except Exception as error:
            await self.failed(record, agent=agent, error=error)
