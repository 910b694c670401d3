"""From a subject and its assessment to the Enrichment event (pure)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.clock import from_micros
from domain.enrich.assessment import Assessment
from domain.enrich.context import PROMPT_VERSION, Subject
from schemas.records import Enrichment, EnrichmentSource

_NAMESPACE = uuid.UUID("5b0e3c4a-8f1d-4a27-b6c9-2e7d9f41a0c3")
FALLBACK_MODEL = "fallback-rules-v1"


@dataclass(frozen=True)
class Outcome:
    """How one subject was assessed: by Claude, from the cache, or by the fallback (and why)."""

    assessment: Assessment
    source: EnrichmentSource
    model: str = FALLBACK_MODEL
    prompt_version: str = PROMPT_VERSION
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    reason: str | None = None  # why the fallback was used


def enrichment_id(subject_event_id: str) -> str:
    """The Enrichment's id, derived from its subject: a re-run emits the same ids."""
    return str(uuid.uuid5(_NAMESPACE, f"{subject_event_id}|enrichment"))


def enrichment_record(subject: Subject, outcome: Outcome, producer: str,
                      ingest_time: datetime) -> Enrichment:
    """The Enrichment event of one subject (causation id = the subject's id)."""
    a = outcome.assessment
    return Enrichment(
        envelope=Enrichment.envelope_for(
            event_time=from_micros(subject.event_time_us), producer=producer,
            ingest_time=ingest_time, event_id=enrichment_id(subject.event_id),
            causation_id=subject.event_id, correlation_id=subject.correlation_id),
        subject_event_id=subject.event_id, subject_type=subject.event_type or subject.kind, symbol=subject.symbol,
        regime=a.regime, sentiment=a.sentiment, risk_flags=list(a.risk_flags),
        confidence=a.confidence, rationale=a.rationale, model=outcome.model,
        prompt_version=outcome.prompt_version, input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens, latency_ms=round(outcome.latency_ms, 3),
        cache_hit=outcome.source is EnrichmentSource.CACHE, source=outcome.source,
        fallback_reason=outcome.reason if outcome.source is EnrichmentSource.FALLBACK else None,
    )
