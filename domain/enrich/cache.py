"""The response cache: answers by cache key with a TTL, which key answered which subject
(so a replayed event finds its answer even if its context came out different), and the
outcome published for each subject (Claude's answer, or the fallback and its reason),
logged under ``subject:<subject id>``: a replayed event gets exactly what live
published, whatever its context and however old, without asking Claude.

What is kept lives in an ``OutcomeStore`` (the port: bytes by key). A worker's is on disk
(``streams.claude.store``), with the newest few in memory, so the lookup is not bounded by
memory however long the log grows; ``MemoryStore`` is the plain in-memory one.

Nothing read back is trusted: a logged answer (``cached_outcome``, ``published_outcome``)
and a stored one (``decode_outcome``) pass the same validation as a live answer, and
their key, source, strings, numbers and time are checked too. A stored value that fails
it counts as absent (the event is asked again).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from domain.enrich.assessment import InvalidAnswer, validate_item
from domain.enrich.outcome import Outcome
from schemas.records import Enrichment, EnrichmentSource, Regime

CACHE_KEY = re.compile(r"[0-9a-f]{64}")
"""A cache key: a sha256 in hex."""
MAX_NAME = 200  # model, prompt version, subject id
CLOCK_SKEW_S = 300.0  # an answer stored later than this after now is not believed
SUBJECT_PREFIX = "subject:"
"""Key prefix of a published outcome in the response log (then the subject's id)."""
ANSWER, SUBJECT, PUBLISHED = "a:", "s:", "p:"
"""Store namespaces: Claude's answer by cache key, the key that answered a subject, the
outcome published for a subject. Bookkeeping of others (``LOG_POSITION``) uses its own."""
LOG_POSITION = "o:"
"""Store namespace of how far the response log was read (per partition)."""


class OutcomeStore(Protocol):
    """The port the cache keeps its values in: bytes by key."""

    def get(self, key: str) -> bytes | None:
        """The value kept under a key, or None."""

    def put(self, key: str, value: bytes) -> None:
        """Keep a value (replacing what the key held)."""

    def delete(self, key: str) -> None:
        """Forget a key (nothing if it holds nothing)."""

    def clear(self) -> None:
        """Forget everything."""


class MemoryStore:
    """An OutcomeStore in memory; with ``max_entries``, the least recently used leaves first."""

    def __init__(self, max_entries: int | None = None) -> None:
        self.max_entries = max_entries
        self._values: dict[str, bytes] = {}
        self._lock = threading.Lock()  # the log is read in a thread while the loop looks up

    def get(self, key: str) -> bytes | None:
        """The value kept under a key (now the most recently used), or None."""
        with self._lock:
            value = self._values.pop(key, None)
            if value is not None:
                self._values[key] = value
            return value

    def put(self, key: str, value: bytes) -> None:
        """Keep a value; past ``max_entries`` the least recently used leave."""
        if self.max_entries == 0:
            return
        with self._lock:
            self._values.pop(key, None)
            self._values[key] = value
            while self.max_entries is not None and len(self._values) > self.max_entries:
                del self._values[next(iter(self._values))]

    def delete(self, key: str) -> None:
        """Forget a key."""
        with self._lock:
            self._values.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


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
    return _validated(_record_fields(record), now)


def published_outcome(key: str, record: Enrichment, now: float) -> Outcome:
    """The outcome logged as published for a subject (Claude's, the cache's or the
    fallback's with its reason), validated like a live answer; InvalidAnswer if not."""
    if record.envelope.event_id != key or key != subject_key(record.subject_event_id):
        raise InvalidAnswer("the record key does not name the answer's subject")
    outcome, _ = _validated(_record_fields(record), now)
    return _with_source(outcome, record.source, record.fallback_reason)


def encode_outcome(outcome: Outcome, stored_at: float) -> bytes:
    """A kept outcome as stored (compact JSON)."""
    a = outcome.assessment
    return json.dumps({
        "regime": a.regime.value.lower(), "sentiment": a.sentiment, "risk_flags": list(a.risk_flags),
        "confidence": a.confidence, "rationale": a.rationale, "model": outcome.model,
        "prompt_version": outcome.prompt_version, "input_tokens": outcome.input_tokens,
        "output_tokens": outcome.output_tokens, "latency_ms": outcome.latency_ms,
        "source": outcome.source.value, "reason": outcome.reason, "stored_at": stored_at,
    }, separators=(",", ":")).encode()


def decode_outcome(value: bytes, now: float) -> tuple[Outcome, float]:
    """A stored outcome and when it was stored, validated like a logged one; InvalidAnswer if not."""
    try:
        fields = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidAnswer("a stored outcome is not JSON") from None
    if not isinstance(fields, dict):
        raise InvalidAnswer("a stored outcome is not an object")
    outcome, stored_at = _validated({**fields, "subject_event_id": "stored"}, now)
    source = fields.get("source")
    if source not in set(EnrichmentSource):
        raise InvalidAnswer("a stored outcome without a known source")
    return _with_source(outcome, EnrichmentSource(source), fields.get("reason")), stored_at


def _with_source(outcome: Outcome, source: EnrichmentSource, reason: object) -> Outcome:
    if source is EnrichmentSource.FALLBACK:
        if not isinstance(reason, str) or not 0 < len(reason) <= 64 or not reason.isidentifier():
            raise InvalidAnswer("a fallback without its reason")
    elif reason is not None:
        raise InvalidAnswer("a reason on an answer that is not a fallback")
    return replace(outcome, source=source, reason=reason)


def _record_fields(record: Enrichment) -> dict[str, Any]:
    regime = record.regime.value.lower() if isinstance(record.regime, Regime) else record.regime
    return {"regime": regime, "sentiment": record.sentiment, "risk_flags": record.risk_flags,
            "confidence": record.confidence, "rationale": record.rationale, "model": record.model,
            "prompt_version": record.prompt_version, "subject_event_id": record.subject_event_id,
            "input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
            "latency_ms": record.latency_ms, "stored_at": record.envelope.event_time.timestamp()}


def _validated(fields: Mapping[str, Any], now: float) -> tuple[Outcome, float]:
    _, assessment = validate_item({"id": "logged", "regime": fields.get("regime"),
                                   "sentiment": fields.get("sentiment"), "risk_flags": fields.get("risk_flags"),
                                   "confidence": fields.get("confidence"), "rationale": fields.get("rationale")})
    for name in ("model", "prompt_version", "subject_event_id"):
        value = fields.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
            raise InvalidAnswer(f"{name} is not a string of 1 to {MAX_NAME} characters")
    tokens = (fields.get("input_tokens"), fields.get("output_tokens"))
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in tokens):
        raise InvalidAnswer("token counts are not counts")
    latency = fields.get("latency_ms")
    if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency < math.inf:
        raise InvalidAnswer("latency is not a duration")
    stored_at = fields.get("stored_at")
    if isinstance(stored_at, bool) or not isinstance(stored_at, int | float) or not math.isfinite(stored_at):
        raise InvalidAnswer("no time it was stored")
    if stored_at > now + CLOCK_SKEW_S:
        raise InvalidAnswer("stored in the future")
    return Outcome(assessment, EnrichmentSource.CLAUDE, model=fields["model"],
                   prompt_version=fields["prompt_version"], input_tokens=fields["input_tokens"],
                   output_tokens=fields["output_tokens"], latency_ms=float(latency)), float(stored_at)


@dataclass
class ResponseCache:
    """The worker's lookup of answers and published outcomes over its store. Times are
    epoch seconds."""

    ttl_s: float
    store: OutcomeStore = field(default_factory=MemoryStore)
    hits: int = 0
    misses: int = 0
    unreadable: int = 0  # stored values that failed validation when read back

    def get(self, key: str, subject_id: str, now: float) -> Outcome | None:
        """A fresh cached answer for this key (or this subject), marked as a cache hit
        that cost no tokens; None on a miss."""
        for candidate in (key, self._key_of(subject_id)):
            found = self._answer(candidate, now) if candidate else None
            if found is not None and now - found[1] < self.ttl_s:
                self.hits += 1
                return replace(found[0], source=EnrichmentSource.CACHE, input_tokens=0,
                               output_tokens=0, latency_ms=0.0, reason=None)
        self.misses += 1
        return None

    def published(self, subject_id: str) -> Outcome | None:
        """The outcome published for a subject as it was published; None if none (or none believable)."""
        found = self._read(PUBLISHED + subject_id, math.inf)  # history: no TTL, no clock
        return found[0] if found else None

    def replayed(self, subject_id: str, refresh_fallbacks: bool = False) -> Outcome | None:
        """What was published for this subject, as this worker publishes it again: Claude's
        answer as a cache hit, a fallback as the same fallback (None for a fallback when
        ``refresh_fallbacks``: then it is asked again). No TTL: it is history."""
        found = self.published(subject_id)
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

    def publish(self, subject_id: str, outcome: Outcome, stored_at: float = 0.0) -> None:
        """Keep the outcome published for a subject (the newest wins, as in the compacted log)."""
        self.store.put(PUBLISHED + subject_id, encode_outcome(outcome, stored_at))

    def remember(self, key: str, subject_id: str, outcome: Outcome, stored_at: float) -> None:
        """Keep an answer (the one stored last for a key wins)."""
        before = self._answer(key, math.inf)
        if before is None or stored_at >= before[1]:
            self.store.put(ANSWER + key, encode_outcome(outcome, stored_at))
        self.store.put(SUBJECT + subject_id, key.encode())

    def take_logged(self, key: str, record: Enrichment | None, now: float) -> None:
        """Keep one record of the response log, read in log order: the newest for a key
        wins, as compaction keeps it. A tombstone (None), or a record that is not
        believed (InvalidAnswer), leaves its key with nothing, as the compacted log would."""
        try:
            if record is None:
                return self.forget(key)
            if key.startswith(SUBJECT_PREFIX):
                return self.publish(record.subject_event_id, published_outcome(key, record, now),
                                    record.envelope.event_time.timestamp())
            outcome, stored_at = cached_outcome(key, record, now)
        except InvalidAnswer:
            self.forget(key)
            raise
        self.store.put(ANSWER + key, encode_outcome(outcome, stored_at))
        self.store.put(SUBJECT + record.subject_event_id, key.encode())

    def forget(self, key: str) -> None:
        """Forget what a response-log key held (a subject's outcome, or an answer)."""
        if key.startswith(SUBJECT_PREFIX):
            self.store.delete(PUBLISHED + key.removeprefix(SUBJECT_PREFIX))
        else:
            self.store.delete(ANSWER + key)

    def _key_of(self, subject_id: str) -> str | None:
        value = self.store.get(SUBJECT + subject_id)  # what it names is validated when read
        return value.decode("utf-8", "replace") if value is not None and len(value) <= MAX_NAME else None

    def _answer(self, key: str, now: float) -> tuple[Outcome, float] | None:
        found = self._read(ANSWER + key, now)
        return found if found is None or found[0].source is EnrichmentSource.CLAUDE else None

    def _read(self, stored_key: str, now: float) -> tuple[Outcome, float] | None:
        value = self.store.get(stored_key)
        if value is None:
            return None
        try:
            return decode_outcome(value, now)
        except InvalidAnswer:
            self.unreadable += 1
            return None

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups (0 before the first lookup)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0
