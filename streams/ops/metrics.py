"""Prometheus metrics of a worker (served at /metrics)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    """The counters and gauges one worker exposes, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_processed = Counter(
            "ticktide_events_processed", "Events an agent processed", ["agent"],
            registry=self.registry)
        self.deadletters = Counter(
            "ticktide_deadletters", "Records sent to system.deadletter", ["agent", "reason"],
            registry=self.registry)
        self.events_sent = Counter(
            "ticktide_events_sent", "Events sent by agents", ["topic"], registry=self.registry)
        self.trade_to_candle_seconds = Histogram(
            "ticktide_trade_to_candle_seconds",
            "From a trade record's broker timestamp to its fold into candles",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry)
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
    """The last N latencies (seconds), for p50/p99 in /health."""

    def __init__(self, size: int = 20_000,
                 on_extend: Callable[[list[float]], None] | None = None) -> None:
        from collections import deque

        self._values: deque[float] = deque(maxlen=size)
        self._on_extend = on_extend

    def extend(self, values: list[float]) -> None:
        """Record latencies."""
        self._values.extend(values)
        if self._on_extend is not None:
            self._on_extend(values)

    def percentiles_ms(self) -> dict[str, float] | None:
        """p50 and p99 in milliseconds, or None before the first value."""
        if not self._values:
            return None
        ordered = sorted(self._values)

        def pick(quantile: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 3)

        return {"p50": pick(0.50), "p99": pick(0.99), "samples": float(len(ordered))}
