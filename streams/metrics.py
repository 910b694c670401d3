"""Prometheus metrics of a worker (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


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
        self.event_lag_seconds = Gauge(
            "ticktide_event_lag_seconds", "Ingest-to-processing delay of the last event",
            ["agent"], registry=self.registry)

    def render(self) -> bytes:
        """The exposition-format text of every metric."""
        return generate_latest(self.registry)
