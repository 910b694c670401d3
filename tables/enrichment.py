"""State of the enrichment agent: the response cache, logged to its compacted topic, and
the recent indicator snapshots per symbol used as context.

The cache is not a Faust table: its keys are cache keys (hashes), not symbols, so it
cannot be co-partitioned with the inputs, and it must outlive an app id (a replay under a
new consumer group re-uses it). Every Claude answer is sent to
``analysis.enrichment_cache`` keyed by its cache key; a worker reads that topic to its
end before it enriches anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

from domain.enrich.assessment import Assessment
from domain.enrich.cache import ResponseCache
from domain.enrich.context import history_entry
from domain.enrich.outcome import Outcome
from schemas.records import Enrichment, EnrichmentSource, IndicatorSnapshot
from streams.app import TickTideApp
from streams.consumer import Consumed, read_topic

log = logging.getLogger(__name__)
CACHE_TOPIC = "analysis.enrichment_cache"
PRODUCER = "agent.enrichment"


def _record(key: str, subject_id: str, outcome: Outcome, stored_at: float) -> Enrichment:
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


def _outcome(record: Enrichment) -> Outcome:
    return Outcome(Assessment(regime=record.regime, sentiment=record.sentiment,
                              risk_flags=tuple(record.risk_flags), confidence=record.confidence,
                              rationale=record.rationale),
                   EnrichmentSource.CLAUDE, model=record.model,
                   prompt_version=record.prompt_version, input_tokens=record.input_tokens,
                   output_tokens=record.output_tokens, latency_ms=record.latency_ms)


class LoggedCache:
    """The response cache of a worker and its log topic."""

    def __init__(self, app: TickTideApp, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache
        self._loaded = False
        self._lock = asyncio.Lock()

    async def load(self) -> int:
        """Read every logged answer (once per worker); how many."""
        async with self._lock:
            if self._loaded:
                return 0
            records = await asyncio.to_thread(self._read)
            for key, record in records:
                self.cache.remember(key, record.subject_event_id, _outcome(record),
                                    record.envelope.event_time.timestamp())
            self._loaded = True
            log.info("enrichment cache: %d answers loaded from %s", len(records), CACHE_TOPIC)
            return len(records)

    def _read(self) -> list[tuple[str, Enrichment]]:
        found = []
        for item in read_topic(self.app.settings, CACHE_TOPIC, idle_timeout=1.5,
                               codec=self.app.codec):
            if isinstance(item, Consumed) and isinstance(item.event, Enrichment) and item.key:
                found.append((item.key.decode(), item.event))
        return found

    async def persist(self, key: str, subject_id: str, outcome: Outcome, stored_at: float) -> None:
        """Log one answer, keyed by its cache key."""
        await self.app.typed_topics[CACHE_TOPIC].send(_record(key, subject_id, outcome, stored_at), key=key)


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
