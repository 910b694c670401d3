"""State of the enrichment agent: the response cache, logged to its compacted topic, the
recent indicator snapshots per symbol used as context, and the ``enrichments`` table (the
latest enrichments of each input partition, for the dashboard).

The cache is not a Faust table: its keys are cache keys (hashes), not symbols, so it
cannot be co-partitioned with the inputs, and it must outlive an app id (a replay under a
new consumer group re-uses it). Every Claude answer is sent to
``analysis.enrichment_cache`` keyed by its cache key; a worker reads that topic before it
enriches anything, up to the end offsets seen when it starts (a busy topic cannot keep it
reading), and serves only the answers that pass the validation of a live answer.
Every outcome the agent publishes (Claude's, the cache's, or the fallback's with its
reason) is logged there too, keyed ``subject:<subject id>``, before the Enrichment is
sent: a replay of the same events publishes exactly the same enrichments, with no call.
The topic is this instance's (``TICKTIDE_TOPIC_PREFIX``); ``ticktide replay --into APP``
copies the live log into the new instance's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faust.types import TableT

from domain.enrich.assessment import InvalidAnswer
from domain.enrich.cache import SUBJECT_PREFIX, ResponseCache, cached_outcome, published_outcome, subject_key
from domain.enrich.context import (
    INPUTS,
    Context,
    Subject,
    build_context,
    history_entry,
    snapshot_due,
    subject_of,
)
from domain.enrich.outcome import Outcome
from schemas.records import Enrichment, EnrichmentSource, Event, IndicatorSnapshot
from streams.errors import BrokerError, DecodeError, UnexpectedRecordType
from streams.faust.context import WorkerApp
from streams.kafka.codec import AvroCodec
from streams.kafka.json_form import event_to_json
from streams.kafka.ranges import read_all
from streams.settings import Settings
from tables import names
from tables.symbol_table import symbol_table

log = logging.getLogger(__name__)
CACHE_TOPIC = "analysis.enrichment_cache"
PRODUCER = "agent.enrichment"
KEEP_ENRICHMENTS = 50
"""Latest enrichments kept per input partition."""


def declare(app: WorkerApp) -> TableT[str, Any]:
    """The enrichments table (co-partitioned with the enrichment agent's inputs)."""
    return symbol_table(app, names.ENRICHMENTS, "Latest enrichments per input partition.")


def remember_enrichments(table: TableT[str, Any], partition: int, enrichments: list[Enrichment]) -> None:
    """Append enrichments to their input partition's row, keeping the last few (call it
    inside ``partition_scope`` of that partition: the enrichment agent reads in batches)."""
    key = names.partition_key(partition)
    shown = [event_to_json(e) for e in enrichments]
    ids = {e["envelope"]["event_id"] for e in shown}
    kept = [e for e in table.get(key) or [] if e["envelope"]["event_id"] not in ids]
    table[key] = (kept + shown)[-KEEP_ENRICHMENTS:]


def cache_record(key: str, subject_id: str, outcome: Outcome, stored_at: float) -> Enrichment:
    """The log record of Claude's answer to a cache key."""
    a = outcome.assessment
    moment = datetime.fromtimestamp(stored_at, UTC)
    return Enrichment(
        envelope=Enrichment.envelope_for(event_time=moment, ingest_time=moment, event_id=key,
                                         producer=PRODUCER, causation_id=subject_id),
        subject_event_id=subject_id, subject_type="cache", regime=a.regime,
        sentiment=a.sentiment, risk_flags=list(a.risk_flags), confidence=a.confidence,
        rationale=a.rationale, model=outcome.model, prompt_version=outcome.prompt_version,
        input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
        latency_ms=outcome.latency_ms, cache_hit=False, source=EnrichmentSource.CLAUDE)


def published_record(subject_id: str, outcome: Outcome, stored_at: float) -> Enrichment:
    """The log record of the outcome published for a subject (keyed ``subject:<id>``)."""
    key = subject_key(subject_id)
    record = cache_record(key, subject_id, outcome, stored_at)
    fallback = outcome.source is EnrichmentSource.FALLBACK
    return dataclasses.replace(record, subject_type="published", source=outcome.source,
                               cache_hit=outcome.source is EnrichmentSource.CACHE,
                               fallback_reason=outcome.reason if fallback else None)


@dataclass
class LoggedAnswers:
    """What reading the cache topic found: valid answers, published outcomes, and why the
    others were ignored."""

    answers: list[tuple[str, str, Outcome, float]] = field(default_factory=list)  # key, subject, ...
    published: dict[str, Outcome] = field(default_factory=dict)  # subject id -> outcome
    ignored: Counter[str] = field(default_factory=Counter)

    def fill(self, cache: ResponseCache) -> None:
        """Put every answer and published outcome found into a response cache."""
        for key, subject_id, outcome, stored_at in self.answers:
            cache.remember(key, subject_id, outcome, stored_at)
        for subject_id, outcome in self.published.items():
            cache.publish(subject_id, outcome)


def read_logged_answers(settings: Settings, codec: AvroCodec, now: float) -> LoggedAnswers:
    """Every answer logged up to the end offsets seen at the start, validated like a live
    answer (``cached_outcome``); an undecodable or invalid one is counted, not kept."""
    found = LoggedAnswers()
    for raw in read_all(settings, settings.topic_prefix + CACHE_TOPIC):
        try:
            key = raw.key.decode() if raw.key is not None else ""
            if raw.value is None:  # a tombstone: forget what the key held so far
                found.answers = [answer for answer in found.answers if answer[0] != key]
                found.published.pop(key.removeprefix(SUBJECT_PREFIX), None)
                continue
            record = codec.decode(raw.value)
            if not isinstance(record, Enrichment):
                raise InvalidAnswer(f"a {type(record).__name__}, not an Enrichment")
            if key.startswith(SUBJECT_PREFIX):
                found.published.pop(record.subject_event_id, None)  # the newest wins
                found.published[record.subject_event_id] = published_outcome(key, record, now)
                continue
            outcome, stored_at = cached_outcome(key, record, now)
        except (DecodeError, InvalidAnswer, UnicodeDecodeError) as problem:
            found.ignored[type(problem).__name__ if isinstance(problem, DecodeError) else str(problem)[:80]] += 1
            continue
        found.answers.append((key, record.subject_event_id, outcome, stored_at))
    return found


class LoggedCache:
    """The response cache of a worker and its log topic."""

    def __init__(self, app: WorkerApp, cache: ResponseCache, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.cache = cache
        self.clock = clock
        self.ignored = 0
        self._loaded = False
        self._lock = asyncio.Lock()

    async def load(self) -> int:
        """Read every logged answer (once per worker); how many were kept."""
        async with self._lock:
            if self._loaded:
                return 0
            try:
                found = await asyncio.to_thread(read_logged_answers, self.app.settings, self.app.codec,
                                                self.clock())
            except BrokerError as error:  # enrich anyway: answers are asked again, on the budget
                log.error("enrichment cache: could not read %s (%s); starting empty", CACHE_TOPIC, error)
                found = LoggedAnswers()
            found.fill(self.cache)
            self._loaded = True
            self.ignored = sum(found.ignored.values())
            log.info("enrichment cache: %d answers and %d published outcomes loaded from %s",
                     len(found.answers), len(found.published), self.app.settings.topic_prefix + CACHE_TOPIC)
            if self.ignored:
                log.warning("enrichment cache: %d logged answers ignored as invalid (%s)", self.ignored,
                            "; ".join(f"{n} x {why}" for why, n in found.ignored.most_common(5)))
            return len(found.answers)

    async def persist(self, key: str, subject_id: str, outcome: Outcome, stored_at: float) -> None:
        """Log one answer, keyed by its cache key."""
        await self.app.typed_topics[CACHE_TOPIC].send(cache_record(key, subject_id, outcome, stored_at), key=key)

    async def log_published(self, published: list[tuple[str, Outcome]]) -> None:
        """Log the outcomes about to be published (subject id, outcome) and wait for the
        broker: a replay must find every one. A subject logged before is logged again
        only when a fallback was replaced (``enrich_refresh_fallbacks``)."""
        topic = self.app.typed_topics[CACHE_TOPIC]
        pending = []
        for subject_id, outcome in published:
            before = self.cache.published.get(subject_id)
            if before is not None and (before.source is not EnrichmentSource.FALLBACK
                                       or outcome.source is EnrichmentSource.FALLBACK):
                continue
            self.cache.publish(subject_id, outcome)
            record = published_record(subject_id, outcome, self.clock())
            pending.append(await topic.send_pending(record, key=record.envelope.event_id))
        await asyncio.gather(*pending)


class EnrichmentInputs:
    """Which records are enriched and the context each is asked with: the one code path of
    the enrichment agent and of ``ticktide enrich backfill`` (same context, same cache key).
    Feed it the records of its topics in the order they are read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.history = ContextHistory(settings.enrich_history)
        self.enabled = set(settings.enrich_inputs.split(","))
        self.types = {topic: kind for topic, kind in INPUTS.values()}
        self.kinds = {topic: name for name, (topic, _) in INPUTS.items()}

    def subject(self, topic: str, record: Event) -> Subject | None:
        """The subject of a decoded, valid record of ``topic`` (unprefixed), or None for one
        that is not enriched (a snapshot not due is kept only as context);
        UnexpectedRecordType for a record the topic must not carry."""
        if not isinstance(record, self.types[topic]):
            raise UnexpectedRecordType(
                f"{topic} carries {self.types[topic].__name__}, not {type(record).__name__}")
        settings = self.settings
        if isinstance(record, IndicatorSnapshot):
            self.history.add(record)
            if not snapshot_due(record, settings.enrich_snapshot_interval, settings.enrich_snapshot_every_s):
                return None
        return subject_of(record) if self.kinds[topic] in self.enabled else None

    def context(self, subject: Subject, chars_per_token: float) -> Context:
        """The context the subject is asked with, from the snapshots fed so far."""
        return build_context(subject, self.history.of(subject.symbol), self.settings.enrich_context_tokens,
                             chars_per_token)


class ContextHistory:
    """The last N indicator snapshots of each symbol, as compact context entries."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._by_symbol: dict[str, deque[dict[str, Any]]] = {}

    def add(self, snapshot: IndicatorSnapshot) -> None:
        """Remember a snapshot (a re-delivered one is not added twice)."""
        entries = self._by_symbol.setdefault(snapshot.symbol, deque(maxlen=max(1, self.keep)))
        entry = history_entry(snapshot)
        if entry not in entries:
            entries.append(entry)

    def of(self, symbol: str | None) -> list[dict[str, Any]]:
        """The symbol's snapshots, oldest first."""
        return sorted(self._by_symbol.get(symbol or "", ()), key=lambda e: e["t_us"])
