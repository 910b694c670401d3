"""Prometheus metrics of the enrichment (``ticktide_enrichment_*``), in the worker's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BREAKER_STATES = ("closed", "half_open", "open")


class EnrichmentMetrics:
    """Calls, tokens, cost, cache hits and lookups, batch latency, breaker state (one 0/1
    series per state, as ``ticktide_worker_lifecycle``), fallbacks by reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter("ticktide_enrichment_calls", "Messages API calls by result",
                             ["result"], registry=registry)
        self.tokens = Counter("ticktide_enrichment_tokens", "Tokens used", ["direction"],
                              registry=registry)
        self.cost = Counter("ticktide_enrichment_cost_usd", "Estimated spend in US dollars",
                            registry=registry)
        self.events = Counter("ticktide_enrichment_events", "Enrichments emitted by source",
                              ["source"], registry=registry)
        # Counters, so the hit ratio is rate(hits) / rate(lookups) over any range, across restarts
        self.cache_hits = Counter("ticktide_enrichment_cache_hits",
                                  "Enrichment inputs answered from the cache or the response log", registry=registry)
        self.cache_lookups = Counter("ticktide_enrichment_cache_lookups",
                                     "Enrichment inputs looked up in the cache or the response log", registry=registry)
        self._cache_seen = (0, 0)
        self.batch_latency = Histogram(
            "ticktide_enrichment_batch_latency_seconds",
            "From a batch's first Messages API attempt to its answer (retries and re-asks included), "
            "per answered batch", buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32), registry=registry)
        self.breaker_state = Gauge("ticktide_enrichment_breaker_state",
                                   "1 for the Claude circuit breaker's current state", ["state"], registry=registry)
        self.set_breaker_state("closed")
        self.breaker_transitions = Counter("ticktide_enrichment_breaker_transitions",
                                           "Breaker state changes", ["to"], registry=registry)
        self.fallbacks = Counter("ticktide_enrichment_fallbacks", "Fallback assessments by reason",
                                 ["reason"], registry=registry)

    def set_breaker_state(self, state: str) -> None:
        """``state`` (closed, half_open, open) is 1, the others 0."""
        for name in BREAKER_STATES:
            self.breaker_state.labels(name).set(1 if name == state else 0)

    def count_cache(self, hits: int, lookups: int) -> None:
        """Bring the cache counters up to the cache's own running totals."""
        seen_hits, seen_lookups = self._cache_seen
        self.cache_hits.inc(max(0, hits - seen_hits))
        self.cache_lookups.inc(max(0, lookups - seen_lookups))
        self._cache_seen = (max(hits, seen_hits), max(lookups, seen_lookups))
