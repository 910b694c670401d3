"""Enrich history at half price: the events of a time range whose answers are not in the
response log go through the Message Batches API, and the answers are logged as live logs
them, so a replay or a new worker over that range asks Claude nothing.

* Which events, and what they are asked with, is the enrichment agent's own code
  (``tables.enrichment.EnrichmentInputs``): the records of the input topics are fed in
  event-time order, indicator snapshots first, so each event gets the context, and so the
  cache key, a worker reading the same history in order gives it. Whether an event is
  answered is the worker's own lookup (``ResponseCache.answer_for``, a published fallback
  counting as unanswered), over the response log as a starting worker reads it.
* Requests are the live calls (same prompt, same grouping of items), held to the daily
  limits of the same budget at the batch price before anything is sent.
* A created batch is remembered in a state file before anything else happens; a later
  run picks it up (its answers are written then) instead of paying for it again.
* Answers are checked like live ones; an errored, expired or invalid one is reported and
  left for a later run; a result for a request that was not asked is reported and ignored.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from domain.clock import to_micros
from domain.enrich.batch import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    BadState,
    PendingBatch,
    TokenSplit,
    state_from_json,
    state_json,
)
from domain.enrich.batching import plan_batches
from domain.enrich.budget import Budget, OverBudget, Reservation, worst_input_tokens
from domain.enrich.cache import ResponseCache
from domain.enrich.context import Context, user_message
from domain.enrich.outcome import Outcome
from schemas.records import EnrichmentSource, Event
from streams.claude.batches import BatchClient, BatchStatus, RequestResult
from streams.claude.client import PROMPT_TEXT
from streams.errors import DecodeError, InvalidInput, InvalidValue, UnexpectedRecordType
from streams.kafka.catalog import topic as catalog_topic
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import Raw, read_all
from streams.settings import Settings
from streams.validation import checked
from tables.enrichment import CACHE_TOPIC, EnrichmentInputs, cache_record

HISTORY = "analysis.indicators"  # the context of every kind
KEEP_WHERE = 5  # locations of skipped records shown


@dataclass
class Found:
    """What a scan of the range found: the contexts to ask by cache key (the first one is
    asked; the others share its answer, as live), and what it did not ask and why."""

    wanted: dict[str, list[Context]] = field(default_factory=dict)
    in_range: int = 0
    answered: int = 0
    fallbacks: int = 0  # of the unanswered: live published a fallback for them
    skipped: Counter[str] = field(default_factory=Counter)
    where: list[str] = field(default_factory=list)

    def skip(self, topic: str, raw: Raw, problem: Exception) -> None:
        """Count a record that cannot be used (the worker dead-letters it) and say where."""
        self.skipped[f"{topic}: {type(problem).__name__}"] += 1
        if len(self.where) < KEEP_WHERE:
            self.where.append(f"{topic} {raw.partition}@{raw.offset}: {str(problem)[:120]}")

    @property
    def events(self) -> int:
        """Events without an answer."""
        return sum(len(contexts) for contexts in self.wanted.values())


def _decoded(settings: Settings, codec: AvroCodec, topic: str, end_us: int,
             found: Found) -> Iterable[tuple[int, int, int, int, str, Event]]:
    order = 0 if topic == HISTORY else 1  # at equal times, snapshots are context first
    for raw in read_all(settings, settings.topic_prefix + topic):
        try:
            record = checked(codec.decode(raw.value), settings.max_future_skew_s)
        except (DecodeError, InvalidValue) as problem:
            found.skip(topic, raw, problem)
            continue
        moment = to_micros(record.envelope.event_time)
        if moment < end_us:
            yield moment, order, raw.partition, raw.offset, topic, record


def scan(settings: Settings, codec: AvroCodec, topics: list[str], start_us: int, end_us: int, model: str,
         chars_per_token: float, cache: ResponseCache, now: float) -> Found:
    """The events of ``topics`` whose event time is in [start_us, end_us) and that a worker
    would have to ask Claude about (``enrich_refresh_fallbacks`` or not)."""
    found = Found()
    inputs = EnrichmentInputs(settings)
    records = sorted((r for t in sorted({*topics, HISTORY}) for r in _decoded(settings, codec, t, end_us, found)),
                     key=lambda r: r[:4])
    seen: set[str] = set()
    for _, _, partition, offset, topic, record in records:
        try:
            subject = inputs.subject(topic, record)
        except UnexpectedRecordType as problem:
            found.skip(topic, Raw(partition, offset, None, None, 0), problem)
            continue
        if (subject is None or topic not in topics or subject.event_id in seen
                or not start_us <= subject.event_time_us < end_us):
            continue
        seen.add(subject.event_id)
        found.in_range += 1
        context = inputs.context(subject, chars_per_token)
        key = context.cache_key(model)
        if cache.answer_for(key, subject.event_id, now, refresh_fallbacks=True) is not None:
            found.answered += 1
        else:
            found.wanted.setdefault(key, []).append(context)
            published = cache.published(subject.event_id)
            found.fallbacks += published is not None and published.source is EnrichmentSource.FALLBACK
    return found


@dataclass
class Planned:
    """The requests of one batch, what they reserved, and what waits for a later run."""

    requests: list[dict[str, object]] = field(default_factory=list)
    items: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # custom_id -> (key, subject)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    events: int = 0
    left: Counter[str] = field(default_factory=Counter)  # why events were not asked -> count


def plan(found: Found, client: BatchClient, budget: Budget, batch_max: int, now: float,
         exclude: Collection[str] = ()) -> Planned:
    """The batch requests of what was found (live's grouping, ``batch_max`` items a request),
    each reserved on the budget at its worst case; ``exclude``: subjects left for a later run."""
    firsts = {key: contexts[0] for key, contexts in found.wanted.items()
              if contexts[0].subject.event_id not in exclude}
    planned, size = Planned(), 0
    planned.left["failed in the batch picked up"] = found.events - sum(len(found.wanted[k]) for k in firsts)
    for keys in plan_batches(firsts, batch_max):
        numbered = {str(n): firsts[key] for n, key in enumerate(keys)}
        events = sum(len(found.wanted[key]) for key in keys)
        custom_id = f"r{len(planned.requests)}"
        request = client.request(custom_id, numbered)
        length = len(json.dumps(request))
        if len(planned.requests) >= MAX_BATCH_REQUESTS or size + length > MAX_BATCH_BYTES:
            planned.left["batch full"] += events
            continue
        try:
            reservation = budget.reserve(now, worst_input_tokens(PROMPT_TEXT + user_message(numbered)),
                                         client.max_output_tokens)
        except OverBudget as over:
            planned.left[f"over budget ({over.limit})"] += events
            continue
        size += length
        planned.requests.append(request)
        planned.items[custom_id] = tuple((key, firsts[key].subject.event_id) for key in keys)
        planned.reservations[custom_id] = reservation
        planned.events += events
    planned.left = +planned.left
    return planned


@dataclass
class Written:
    """What writing a batch's results back did."""

    answers: int = 0
    left: Counter[str] = field(default_factory=Counter)  # why answers are missing -> count
    unknown: list[str] = field(default_factory=list)  # custom ids of results nobody asked for
    failed: set[str] = field(default_factory=set)  # subjects left for a later run
    tokens: TokenSplit = field(default_factory=TokenSplit)
    details: list[str] = field(default_factory=list)


def write_answers(settings: Settings, producer: EventProducer, batch: PendingBatch,
                  results: Iterable[RequestResult], clock: Callable[[], float],
                  settle: Callable[[str, TokenSplit], None] = lambda cid, used: None) -> Written:
    """Log every valid answer of the results as live logs an answer (keyed by its cache key)."""
    written, seen = Written(), set()
    spec = catalog_topic(CACHE_TOPIC)
    for result in results:
        items = batch.requests.get(result.custom_id)
        if items is None and result.kind == "unreadable":
            written.details.append(result.detail)
            continue
        if items is None or result.custom_id in seen:
            written.unknown.append(result.custom_id or "(none)")
            continue
        seen.add(result.custom_id)
        written.tokens += result.tokens
        settle(result.custom_id, result.tokens)
        if result.kind != "succeeded":
            written.left[result.kind] += len(items)
            written.failed.update(subject for _, subject in items)
            if result.detail and len(written.details) < KEEP_WHERE:
                written.details.append(f"{result.custom_id}: {result.detail}")
            continue
        for number, (key, subject_id) in enumerate(items):
            assessment = result.assessments.get(str(number))
            if assessment is None:
                written.left[result.problems.get(str(number), "no answer")[:60]] += 1
                written.failed.add(subject_id)
                continue
            outcome = Outcome(assessment, EnrichmentSource.CLAUDE, model=batch.model,
                              input_tokens=result.tokens.input_tokens // len(items),
                              output_tokens=result.tokens.output // len(items))
            record = cache_record(key, subject_id, outcome, clock())
            spec.check(record)
            checked(record, settings.max_future_skew_s)
            producer.send_raw(settings.topic_prefix + CACHE_TOPIC, key.encode(), producer.codec.encode(record))
            written.answers += 1
    for custom_id, items in batch.requests.items():
        if custom_id not in seen:
            written.left["no result"] += len(items)
            written.failed.update(subject for _, subject in items)
    producer.flush()
    return written


def follow(client: BatchClient, batch_id: str, poll_s: float, interrupted: threading.Event,
           on_status: Callable[[BatchStatus], None]) -> BatchStatus | None:
    """Poll a batch until it ends (its last status) or ``interrupted`` is set (None)."""
    while not interrupted.is_set():
        status = client.retrieve(batch_id)
        on_status(status)
        if status.ended:
            return status
        interrupted.wait(poll_s)
    return None


class StateFile:
    """The batches created and not yet written back, in a small JSON file (written whole,
    atomically: a crash leaves the old or the new content)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, settings: Settings) -> StateFile:
        """The default state file of an instance: in its data dir, named by its app id."""
        return cls(Path(settings.data_dir) / f"enrich-backfill.{settings.app_id}.json")

    def load(self) -> list[PendingBatch]:
        """The remembered batches ([] without a file); InvalidInput for a broken file."""
        try:
            return state_from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, BadState) as problem:
            raise InvalidInput(f"backfill state {self.path} cannot be used ({str(problem)[:200]}); move it "
                               "away to start afresh (its batches' answers would be paid for again)") from None

    def save(self, batches: list[PendingBatch]) -> None:
        """Remember exactly these batches."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_name(self.path.name + ".tmp")
        scratch.write_text(json.dumps(state_json(batches), indent=1), encoding="utf-8")
        os.replace(scratch, self.path)


def remembered(settings: Settings, planned: Planned, status: BatchStatus, model: str) -> PendingBatch:
    """The state entry of a batch just created from ``planned``."""
    return PendingBatch(status.batch_id, datetime.now(UTC).isoformat(timespec="seconds"), model,
                        settings.topic_prefix, planned.items)
