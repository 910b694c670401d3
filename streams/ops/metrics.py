"""Prometheus metrics of a worker (served at /metrics), following Prometheus' conventions:
counters end in ``_total``, each label holds one value, a histogram's ``_count`` counts what
it is named for (every value is observed, none sampled), and the process and Python runtime
metrics (``process_*``, ``python_*``) are exported as the default registry would."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class BatchHistogram(Collector):
    """A histogram that takes a batch of values at once: the hot path observes every trade's
    latency (so ``_count`` counts trades) for about a bisect and two adds each, where
    ``Histogram.observe`` takes a lock per value."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS, registry: CollectorRegistry | None = None) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def observe_many(self, values: Iterable[float], *labels: str) -> None:
        """Observe each value (seconds) under the label values ``labels``."""
        bounds = self.bounds
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = ([0] * (len(bounds) + 1), [0.0])
            counts, total = series
            for value in values:
                counts[bisect_left(bounds, value)] += 1
                total[0] += value

    def count(self, *labels: str) -> int:
        """Values observed under ``labels``."""
        series = self._series.get(labels)
        return sum(series[0]) if series else 0

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            for labels, (counts, total) in sorted(self._series.items()):
                cumulative, running = [], 0
                for bound, n in zip((*map(str, self.bounds), "+Inf"), counts, strict=True):
                    running += n
                    cumulative.append((bound, running))
                family.add_metric(list(labels), cumulative, total[0])
        yield family


def add_runtime_collectors(registry: CollectorRegistry) -> None:
    """The process (CPU, memory, open files), platform and garbage-collector metrics that
    prometheus_client's default registry has, in a registry of our own."""
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)


class Metrics:
    """The counters and gauges one worker exposes, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        add_runtime_collectors(self.registry)
        self.events_processed = Counter(
            "ticktide_events_processed", "Events an agent finished with (processed or dead-lettered)",
            ["agent"], registry=self.registry)
        self.deadletters = Counter(
            "ticktide_deadletters", "Records sent to system.deadletter", ["agent", "reason"],
            registry=self.registry)
        self.events_sent = Counter(
            "ticktide_events_sent", "Events sent by agents", ["topic"], registry=self.registry)
        self.late_trades = Counter(
            "ticktide_late_trades", "Trades later than the grace period", ["symbol"],
            registry=self.registry)
        self.trade_gap_reads = Counter(
            "ticktide_trade_gap_reads", "Times the candle fold read trades it had missed (after a "
            "failed run or a forgotten memory) again from market.trades", ["partition"],
            registry=self.registry)
        self.retries = Counter(
            "ticktide_retries", "Records sent to system.retry for another try", ["agent"],
            registry=self.registry)
        self.replayed = Counter(
            "ticktide_retry_resent", "Records the retry agent re-sent to their source topic",
            ["topic"], registry=self.registry)

    def render(self) -> bytes:
        """The exposition-format text of every metric."""
        return generate_latest(self.registry)


class LatencyWindow:
    """The last N latencies (seconds), for p50/p99 in /health.

    Sorting the window takes ~2.5 ms here: polled five times a second while the fold is
    busy, that was 1% of a worker's time. The percentiles are therefore worked out at most
    once per ``refresh_s`` and shown as they were then."""

    def __init__(self, size: int = 20_000, on_extend: Callable[[list[float]], None] | None = None,
                 refresh_s: float = 1.0) -> None:
        from collections import deque

        self._values: deque[float] = deque(maxlen=size)
        self._on_extend = on_extend
        self.refresh_s = refresh_s
        self._shown: tuple[float, dict[str, float]] | None = None  # (when, percentiles)

    def extend(self, values: list[float]) -> None:
        """Record latencies."""
        self._values.extend(values)
        if self._on_extend is not None:
            self._on_extend(values)

    def percentiles_ms(self) -> dict[str, float] | None:
        """p50 and p99 in milliseconds (as of at most ``refresh_s`` ago), or None before the
        first value."""
        if not self._values:
            return None
        now = time.monotonic()
        if self._shown is not None and now - self._shown[0] < self.refresh_s:
            return self._shown[1]
        ordered = sorted(self._values)

        def pick(quantile: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 3)

        shown = {"p50": pick(0.50), "p99": pick(0.99), "samples": float(len(ordered))}
        self._shown = (now, shown)
        return shown
