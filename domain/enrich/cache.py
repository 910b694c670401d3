"""The response cache: answers by cache key with a TTL, and which key answered which
subject (so a replayed event finds its answer even if its context came out different).
At most ``max_entries`` of each are kept, the oldest stored leaving first."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from domain.enrich.outcome import Outcome
from schemas.records import EnrichmentSource


@dataclass
class ResponseCache:
    """key -> (Claude's outcome, stored at); subject id -> key. Times are epoch seconds."""

    ttl_s: float
    max_entries: int = 100_000
    entries: dict[str, tuple[Outcome, float]] = field(default_factory=dict)
    subjects: dict[str, str] = field(default_factory=dict)
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
