"""State of the enrichment agent: the response cache, logged to its compacted topic, the
recent indicator snapshots per symbol used as context, and the ``enrichments`` table (the
latest enrichments of each input partition, for the dashboard).

The cache is not a Faust table: its keys are cache keys (hashes), not symbols, so it
cannot be co-partitioned with the inputs, and it must outlive an app id (a replay under a
new consumer group re-uses it). Every Claude answer is sent to
``analysis.enrichment_cache`` keyed by its cache key; a worker keeps that log in its own
store on disk and serves only the answers that pass the validation of a live answer
(``tables.response_log``). Every outcome the agent publishes (Claude's, the cache's, or the fallback's with its
reason) is logged there too, keyed ``subject:<subject id>``, before the Enrichment is
sent: a replay of the same events publishes exactly the same enrichments, with no call.
The topic is this instance's (``TICKTIDE_TOPIC_PREFIX``); ``ticktide replay --into APP``
copies the live log into the new instance's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

from faust.types import TableT

from domain.enrich.cache import subject_key
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
from streams.errors import UnexpectedRecordType
from streams.faust.context import WorkerApp
from streams.kafka.json_form import event_to_json
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
