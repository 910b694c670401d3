"""The batch histogram exposes what prometheus_client's own Histogram would for the same values."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.ops.metrics import LATENCY_BUCKETS, BatchHistogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): round(s.value, 9)
            for family in text_string_to_metric_families(text) for s in family.samples
            if not s.name.endswith("_created")}


def test_batch_histogram_equals_prometheus_histogram_on_the_same_values() -> None:
    rng = random.Random(2)
    values = [rng.choice([0.001, 0.1, 10.0, 0.0, 99.0]) if rng.random() < 0.1 else rng.expovariate(20)
              for _ in range(5000)]  # values on the bucket bounds too: `le` is inclusive
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("x_seconds", "x", ["agent"], registry=ours)
    reference = Histogram("x_seconds", "x", ["agent"], buckets=LATENCY_BUCKETS, registry=theirs)
    for start in range(0, len(values), 333):
        batch.observe_many(values[start:start + 333], "a")
    for value in values:
        reference.labels("a").observe(value)
    assert _samples(ours) == _samples(theirs)
    assert batch.count("a") == len(values) and batch.count("b") == 0
