"""Fixes to faust-streaming 0.15.3's start, rebalances and stop (any broker).

Resume the flow before fetching. After a rebalance, Faust's recovery resumes fetching the agents' partitions *before* it
resumes the flow of messages into the streams. Records fetched in that window are handed
to a stream whose flow is still suspended: the hand-off gives up at once, the record is
dropped, and the consumer's read offset moves past it anyway. The agent then goes on from
a later offset, and the dropped records are never seen (observed here: a worker that took
over a partition went from offset 15 straight to 33; faust-streaming issue #216 reports
the same). The fix keeps Faust's steps and changes their order: seek to the committed
offsets, resume the flow, and only then resume fetching.

Rewind a partition without a committed offset (``rewind_uncommitted_partitions``). Faust's
``getmany`` takes records out of aiokafka's fetcher and hands to no stream those of a
partition that is no longer active when they come back (an assignment makes every partition
active, then pauses them for table recovery, while a fetch may be in flight) and all of
them while the flow is stopped. aiokafka's position has moved past them; what brings them
back is the seek to the committed offsets before streams resume. But aiokafka's
``seek_to_committed`` seeks only to a committed offset above 0: a partition nobody had
committed stayed past the dropped records, and they were never processed. Seen on Apache
Kafka: a worker SIGKILLed right after its analysis agent wrote anomalies (no enrichment
offset committed yet); the worker taking over fetched analysis.anomalies offsets 0-3 of a
partition during recovery, handed none to the enrichment agent, and went on from offset 4:
those anomalies were never enriched, and the strategy, which waits for the enrichments it
weighs, placed fewer orders or none. The seek now moves such a partition to its beginning,
where the app's ``consumer_auto_offset_reset`` (``earliest``) starts a partition nobody
committed.

Bound the wait for in-flight records before a rebalance (``bound_wait_empty``).

Start without waiting 3 s for the reply topic (``start_replies_in_background``). Faust's
consumer of ask()'s replies declares its topic, registers it, sleeps 3 s and only then
iterates it, which registers a *copy* of the topic: the copy is what its stream reads, and
the conductor routes a partition's records only to the topics registered when the
partition was assigned. The worker's start waited those 3 s. Started in the background, the
group's first assignment came before the copy on Apache Kafka (a join takes ~0.5 s there,
~3 s on the embedded broker): every reply went to the original, unread, and each
``GET /assess`` timed out. Now the iterating copy is registered before the worker
subscribes, and nothing sleeps.

Record no decorator for autodiscovery (``skip_decorator_scanning``). Each agent, timer,
page and service Faust declares is recorded for venusian's scan, which ``autodiscover``
uses (off here: the composition root declares everything). Recording asks
``inspect.getframeinfo``, which walks ``sys.modules`` and so imports every module loaded
lazily: the anthropic SDK, about 2 s of CPU, in every worker, with or without an API key.

Wait until a created topic is in the cluster's metadata (``wait_for_created_topics``).
Apache Kafka answers CreateTopics once the controller has the topic; a broker's metadata
has it a moment later. Faust creates its internal topics (the trade owners topic, the
changelogs) and subscribes right away: a topic the group's first assignment did not see was
"ignored" until the next metadata refresh (minutes), so the worker folded no trade.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from typing import Any

from aiokafka.structs import TopicPartition
from faust.agents.replies import ReplyConsumer
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport
from faust.utils import venusian

from streams.faust.patches.private_api import require_tested_faust


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


async def _seek_to_committed_or_beginning(self: Any) -> Any:
    """Seek each assigned partition to its committed offset, and one without (or at 0) to its
    beginning; changelogs are left where table recovery put them. The committed offsets, as
    Faust's own ``seek_to_committed`` returns them.

    The beginning is offset 0, set at once: where retention has deleted it, the fetch is out
    of range and aiokafka resets to the earliest offset ('earliest'). aiokafka's
    ``seek_to_beginning`` would hold the resume until its fetcher has asked for the earliest
    offset (1.4 s measured on Kafka, behind a pending fetch)."""
    committed = await self._thread.seek_to_committed()
    for tp, offset in committed.items():
        if not offset and not self._is_changelog_tp(tp):
            self._thread.seek(tp, 0)
    return committed


def rewind_uncommitted_partitions(app: Any) -> None:
    """Patch Faust's seek before streams resume to rewind partitions nobody committed (see
    the module's docstring); the app's consumers start such a partition at its beginning."""
    require_tested_faust("rewind_uncommitted_partitions")
    if app.conf.consumer_auto_offset_reset != "earliest":
        raise RuntimeError("rewind_uncommitted_partitions needs consumer_auto_offset_reset='earliest'")
    AIOKafkaConsumer.seek_to_committed = _seek_to_committed_or_beginning  # type: ignore[method-assign]


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


def _recorded_by_nobody(*_: Any, **__: Any) -> None:
    """Nothing scans for Faust's decorators: autodiscover is off."""


def skip_decorator_scanning() -> None:
    """Patch Faust's decorators to record nothing for autodiscovery (before the app is built)."""
    require_tested_faust("skip_decorator_scanning")
    venusian.attach = _recorded_by_nobody


async def _start_reply_fetcher_at_once(self: Any) -> None:
    name = self.app.conf.reply_to
    if self.app.conf.reply_create_topic and name not in self._fetchers:
        self._fetchers[name] = None  # Faust's lock: ask() starts no second fetcher
        topic = self._reply_topic(name)
        reading = topic.__aiter__()  # registers the copy the stream reads, before the worker subscribes
        await topic.maybe_declare()
        self._fetchers[name] = self.add_future(self._drain_replies(reading))


def start_replies_in_background() -> None:
    """Patch the reply consumer to start without its 3 s sleep, its stream registered
    before the worker subscribes (see the module's docstring)."""
    require_tested_faust("start_replies_in_background")
    ReplyConsumer.on_start = _start_reply_fetcher_at_once  # type: ignore[method-assign]


CREATED_TOPIC_VISIBLE_S = 15.0
"""How long a worker waits for a topic it created to show in the metadata (then goes on)."""
log = logging.getLogger(__name__)


def _led(metadata: Any, topic: str) -> bool:
    """The topic is in ``metadata`` and each of its partitions has a leader."""
    partitions = metadata.partitions_for_topic(topic)
    leaders = [metadata.leader_for_partition(TopicPartition(topic, p)) for p in partitions or ()]
    return bool(leaders) and all(leader is not None and leader >= 0 for leader in leaders)


async def _visible(client: Any, topic: str) -> bool:
    return _led(client.cluster, topic) or _led(await client.fetch_all_metadata(), topic)


def wait_for_created_topics() -> None:
    """Patch Faust's topic creation to return once the topic is in the metadata with a
    leader for every partition (see the module's docstring)."""
    require_tested_faust("wait_for_created_topics")
    original = getattr(Transport._create_topic, "__wrapped__", Transport._create_topic)

    async def create_topic(self: Any, owner: Any, client: Any, topic: str, *args: Any, **kwargs: Any) -> None:
        await original(self, owner, client, topic, *args, **kwargs)
        deadline = time.monotonic() + CREATED_TOPIC_VISIBLE_S
        while not owner.should_stop:
            try:
                if await _visible(client, topic):
                    return
            except Exception as error:  # a broker going away: ask again until the deadline
                log.debug("metadata of %s not available yet: %s", topic, error)
            if time.monotonic() > deadline:
                log.warning("topic %s is not in the cluster's metadata %.0f s after its creation: going on",
                            topic, CREATED_TOPIC_VISIBLE_S)
                return
            await asyncio.sleep(0.05)

    create_topic.__wrapped__ = original  # type: ignore[attr-defined]
    Transport._create_topic = create_topic  # type: ignore[method-assign]
