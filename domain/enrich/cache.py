"""The response cache: answers by cache key with a TTL, and which key answered which
subject (so a replayed event finds its answer even if its context came out different).
At most ``max_entries`` of each are kept, the oldest stored leaving first.

It also holds the outcome published for each subject (Claude's answer, or the fallback
and its reason), logged under ``subject:<subject id>``: a replayed event gets exactly
what live published, whatever its context and however old, without asking Claude.

A logged answer read back (``cached_outcome``) is as untrusted as a live one: it passes
the same validation, and its key, source, strings, numbers and time are checked too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from domain.enrich.assessment import InvalidAnswer, validate_item
from domain.enrich.outcome import Outcome
from schemas.records import Enrichment, EnrichmentSource, Regime

CACHE_KEY = re.compile(r"[0-9a-f]{64}")
"""A cache key: a sha256 in hex."""
MAX_NAME = 200  # model, prompt version, subject id
CLOCK_SKEW_S = 300.0  # an answer stored later than this after now is not believed


SUBJECT_PREFIX = "subject:"
"""Key prefix of a published outcome in the response log (then the subject's id)."""


def subject_key(subject_id: str) -> str:
    """The response log's key of the outcome published for a subject."""
    return SUBJECT_PREFIX + subject_id


def cached_outcome(key: str, record: Enrichment, now: float) -> tuple[Outcome, float]:
    """The outcome a logged answer stands for and when it was stored, validated like a
    live answer; InvalidAnswer naming the first problem."""
    if not CACHE_KEY.fullmatch(key):
        raise InvalidAnswer("the record key is not a cache key")
    if record.envelope.event_id != key:
        raise InvalidAnswer("the record key does not match the answer's id")
    if record.source is not EnrichmentSource.CLAUDE:
        raise InvalidAnswer(f"a {record.source} answer is never cached")
    return _validated(record, now)


def published_outcome(key: str, record: Enrichment, now: float) -> Outcome:
    """The outcome logged as published for a subject (Claude's, the cache's or the
    fallback's with its reason), validated like a live answer; InvalidAnswer if not."""
    if record.envelope.event_id != key or key != subject_key(record.subject_event_id):
        raise InvalidAnswer("the record key does not name the answer's subject")
    reason = record.fallback_reason
    if record.source is EnrichmentSource.FALLBACK:
        if not isinstance(reason, str) or not 0 < len(reason) <= 64 or not reason.isidentifier():
            raise InvalidAnswer("a fallback without its reason")
    elif reason is not None:
        raise InvalidAnswer("a reason on an answer that is not a fallback")
    outcome, _ = _validated(record, now)
    return replace(outcome, source=record.source, reason=reason)


def _validated(record: Enrichment, now: float) -> tuple[Outcome, float]:
    regime = record.regime.value.lower() if isinstance(record.regime, Regime) else record.regime
    _, assessment = validate_item({
        "id": "logged", "regime": regime, "sentiment": record.sentiment, "risk_flags": record.risk_flags,
        "confidence": record.confidence, "rationale": record.rationale})
    for name in ("model", "prompt_version", "subject_event_id"):
        value = getattr(record, name)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
            raise InvalidAnswer(f"{name} is not a string of 1 to {MAX_NAME} characters")
    tokens = (record.input_tokens, record.output_tokens)
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in tokens):
        raise InvalidAnswer("token counts are not counts")
    latency = record.latency_ms
    if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency < math.inf:
        raise InvalidAnswer("latency is not a duration")
    stored_at = record.envelope.event_time.timestamp()
    if stored_at > now + CLOCK_SKEW_S:
        raise InvalidAnswer("stored in the future")
    return Outcome(assessment, EnrichmentSource.CLAUDE, model=record.model,
                   prompt_version=record.prompt_version, input_tokens=record.input_tokens,
                   output_tokens=record.output_tokens, latency_ms=float(latency)), stored_at


@dataclass
class ResponseCache:
    """key -> (Claude's outcome, stored at); subject id -> key. Times are epoch seconds."""

    ttl_s: float
    max_entries: int = 100_000
    entries: dict[str, tuple[Outcome, float]] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)
    published: dict[str, Outcome] = field(default_factory=dict)  # subject id -> what was published
    hits: int = 0
    misses: int = 0

    def get(self, key: str, subject_id: str, now: float) -> Outcome | None:
        """A fresh cached answer for this key (or this subject), marked as a cache hit
        that cost no tokens; None on a miss."""
        for candidate in (key, self.subjects.get(subject_id)):
            found = self.entries.get(candidate) if candidate else None
            if found is not None and now - found[1] < self.ttl_s:
                self.hits += 1
                return replace(found[0], source=EnrichmentSource.CACHE, input_tokens=0,
                               output_tokens=0, latency_ms=0.0, reason=None)
        self.misses += 1
        return None

    def replayed(self, subject_id: str, refresh_fallbacks: bool = False) -> Outcome | None:
        """What was published for this subject, as this worker publishes it again: Claude's
        answer as a cache hit, a fallback as the same fallback (None for a fallback when
        ``refresh_fallbacks``: then it is asked again). No TTL: it is history."""
        found = self.published.get(subject_id)
        if found is None or (refresh_fallbacks and found.source is EnrichmentSource.FALLBACK):
            return None
        self.hits += 1
        if found.source is EnrichmentSource.FALLBACK:
            return replace(found, input_tokens=0, output_tokens=0, latency_ms=0.0)
        return replace(found, source=EnrichmentSource.CACHE, input_tokens=0, output_tokens=0,
                       latency_ms=0.0, reason=None)

    def answer_for(self, key: str, subject_id: str, now: float, refresh_fallbacks: bool = False) -> Outcome | None:
        """What a worker serves an event without asking Claude (what was published for its
        subject, else a fresh answer to its key or its subject); None: it would be asked."""
        return self.replayed(subject_id, refresh_fallbacks) or self.get(key, subject_id, now)

    def publish(self, subject_id: str, outcome: Outcome) -> None:
        """Keep the outcome published for a subject (the newest wins, as in the compacted log)."""
        self.published.pop(subject_id, None)
        self.published[subject_id] = outcome
        while len(self.published) > self.max_entries:
            del self.published[next(iter(self.published))]

    def remember(self, key: str, subject_id: str, outcome: Outcome, stored_at: float) -> None:
        """Keep an answer (the newest one for a key wins)."""
        if stored_at >= self.entries.get(key, (outcome, float("-inf")))[1]:
            self.entries.pop(key, None)
            self.entries[key] = (outcome, stored_at)
        self.subjects[subject_id] = key
        for index in (self.entries, self.subjects):  # memory stays bounded: oldest out first
            while len(index) > self.max_entries:
                del index[next(iter(index))]

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups (0 before the first lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0
