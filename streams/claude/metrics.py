"""Prometheus metrics of the enrichment (``ticktide_enrichment_*``), in the worker's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class EnrichmentMetrics:
    """Calls, tokens, cost, cache hit ratio, latency, breaker state, fallbacks by reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter("ticktide_enrichment_calls", "Messages API calls by result",
                             ["result"], registry=registry)
        self.tokens = Counter("ticktide_enrichment_tokens", "Tokens used", ["direction"],
                              registry=registry)
        self.cost = Counter("ticktide_enrichment_cost_usd", "Estimated spend in US dollars",
                            registry=registry)
        self.events = Counter("ticktide_enrichment_events", "Enrichments emitted by source",
                              ["source"], registry=registry)
        self.cache_hit_ratio = Gauge("ticktide_enrichment_cache_hit_ratio",
                                     "Cache hits over lookups since start", registry=registry)
        self.latency = Histogram("ticktide_enrichment_latency_seconds", "Messages API call latency",
                                 buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32), registry=registry)
        self.breaker_state = Gauge("ticktide_enrichment_breaker_state",
                                   "Circuit breaker: 0 closed, 1 half-open, 2 open", registry=registry)
        self.breaker_transitions = Counter("ticktide_enrichment_breaker_transitions",
                                           "Breaker state changes", ["to"], registry=registry)
        self.fallbacks = Counter("ticktide_enrichment_fallbacks", "Fallback assessments by reason",
                                 ["reason"], registry=registry)
