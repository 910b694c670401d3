"""The batch histogram exposes what prometheus_client's own Histogram would for the same values."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.ops.metrics import LATENCY_BUCKETS, BatchHistogram, LatencyWindow


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


def test_the_latency_window_shows_its_percentiles_and_works_them_out_again_only_after_refresh_s() -> None:
    fresh = LatencyWindow(size=100, refresh_s=0)
    assert fresh.percentiles_ms() is None
    fresh.extend([n / 1000 for n in range(1, 201)])  # 1..200 ms, the window keeps the last 100
    assert fresh.percentiles_ms() == {"p50": 151.0, "p99": 200.0, "samples": 100.0}
    fresh.extend([1.0] * 100)
    assert fresh.percentiles_ms() == {"p50": 1000.0, "p99": 1000.0, "samples": 100.0}

    polled = LatencyWindow(size=100, refresh_s=3600)
    polled.extend([0.002] * 100)
    shown = polled.percentiles_ms()
    polled.extend([1.0] * 100)
    assert polled.percentiles_ms() == shown  # as of the last time they were worked out
