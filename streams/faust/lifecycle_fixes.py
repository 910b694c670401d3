"""Fixes to faust-streaming 0.15.3's start, rebalances and stop (any broker).

Resume the flow before fetching. After a rebalance, Faust's recovery resumes fetching the agents' partitions *before* it
resumes the flow of messages into the streams. Records fetched in that window are handed
to a stream whose flow is still suspended: the hand-off gives up at once, the record is
dropped, and the consumer's read offset moves past it anyway. The agent then goes on from
a later offset, and the dropped records are never seen (observed here: a worker that took
over a partition went from offset 15 straight to 33; faust-streaming issue #216 reports
the same). The fix keeps Faust's steps and changes their order: seek to the committed
offsets, resume the flow, and only then resume fetching.

Bound the wait for in-flight records before a rebalance (``bound_wait_empty``).

Start without waiting for the reply topic. The consumer of ask()'s replies sleeps 3 s
after declaring its topic, and the worker's start waited for it: start it in the background
(nothing can ask before the web views are up).
"""

from __future__ import annotations

import time
import types
from typing import Any

from faust.agents.replies import ReplyConsumer
from faust.transport.consumer import Consumer

from streams.faust.internals import require_tested_faust


async def _resume_streams(self: Any, generation_id: int = 0) -> None:
    app = self.app
    consumer = app.consumer
    await app.on_rebalance_complete.send()
    assignment = consumer.assignment()
    if app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again")
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
    self.completed.set()
    self.log.info("Resuming flow...")
    app.flow_control.resume()
    consumer.resume_flow()
    if assignment:
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


def resume_flow_before_fetching(app: Any) -> None:
    """Patch the app's table recovery so no record is fetched while the flow is suspended."""
    require_tested_faust("resume_flow_before_fetching")
    recovery = app.tables.recovery
    recovery._resume_streams = types.MethodType(_resume_streams, recovery)


WAIT_EMPTY_SHARE = 0.8
"""Of the session timeout: how long a revocation waits for streams to acknowledge."""


async def _wait_empty(self: Any) -> None:
    """Faust's wait for in-flight records before a rebalance, bounded.

    A record delivered to two agents whose queue copy is cleared by the revocation keeps a
    reference count that never reaches zero; Faust then waits for it forever and the group
    never finishes rebalancing (seen in the scaling test: a record of the trade-batch
    topic, read by the candle and the marks agents, all agents idle). After the bound we
    go on: unacknowledged records are re-delivered from the last commit, and every fold
    here skips what it has applied."""
    deadline = time.monotonic() + self.app.conf.broker_session_timeout * WAIT_EMPTY_SHARE
    while not self.should_stop and self._unacked_messages and time.monotonic() < deadline:
        await self.commit()
        if not self._unacked_messages:
            break
        await self._wait_for_ack(timeout=1)
        self._clean_unacked_messages()
    if self._unacked_messages:
        self.log.warning("going on with %d unacknowledged records (re-delivered from the last commit)",
                         len(self._unacked_messages))
        self._unacked_messages.clear()
    await self.commit_and_end_transactions()


def bound_wait_empty() -> None:
    """Patch Faust's consumer so a revocation cannot wait forever for a lost record."""
    require_tested_faust("bound_wait_empty")
    Consumer.wait_empty = _wait_empty  # type: ignore[method-assign]


async def _start_reply_fetcher_in_background(self: Any) -> None:
    if self.app.conf.reply_create_topic:
        self.add_future(self._start_fetcher(self.app.conf.reply_to))


def start_replies_in_background() -> None:
    """Patch the reply consumer to start in the background (see the module's docstring)."""
    require_tested_faust("start_replies_in_background")
    ReplyConsumer.on_start = _start_reply_fetcher_in_background  # type: ignore[method-assign]
