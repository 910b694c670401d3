"""Operational metrics computed when Prometheus scrapes: consumer lag per partition,
events in per agent and topic, table sizes, recovery progress, lifecycle and readiness.

Counters and histograms that agents update as they go live in streams/ops/metrics.py and
streams/ops/worker_state.py; this collector adds what is cheapest to read at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.records import Lifecycle

if TYPE_CHECKING:
    from streams.faust.app import TickTideApp


class OpsCollector(Collector):
    """Scrape-time metrics of one worker."""

    def __init__(self, app: TickTideApp) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        app, probe = self.app, self.app.probe
        events_in = CounterMetricFamily("ticktide_events_in", "Events an agent consumed and finished",
                                        labels=["agent", "topic"])
        for agent, stats in sorted(probe.agents.items()):
            topics = sorted(probe.input_topics(agent)) or [""]
            events_in.add_metric([agent, ",".join(topics)], stats.processed)
        yield events_in

        lag = GaugeMetricFamily("ticktide_consumer_lag_records",
                                "Records between this worker's position and the partition end",
                                labels=["topic", "partition"])
        for where, n in probe.lag().items():
            topic, _, partition = where.rstrip("]").rpartition("[")
            lag.add_metric([topic, partition], n)
        yield lag

        sizes = GaugeMetricFamily("ticktide_table_keys", "Keys in this worker's part of a table",
                                  labels=["table"])
        for name, table in sorted(app.tables.items()):
            sizes.add_metric([name], _size(table))
        yield sizes

        recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
        remaining = GaugeMetricFamily("ticktide_recovery_remaining_records",
                                      "Changelog records still to read before tables are recovered",
                                      labels=["kind"])
        remaining.add_metric(["active"], _safe(recovery.active_remaining_total))
        remaining.add_metric(["standby"], _safe(recovery.standby_remaining_total))
        yield remaining
        yield GaugeMetricFamily("ticktide_recovery_in_progress", "1 while tables recover",
                                value=1 if getattr(app, "in_recovery", False) else 0)

        state = GaugeMetricFamily("ticktide_worker_lifecycle", "1 for the worker's current lifecycle state",
                                  labels=["state"])
        for lifecycle in Lifecycle:
            state.add_metric([lifecycle.value.lower()], 1 if probe.lifecycle is lifecycle else 0)
        yield state
        yield GaugeMetricFamily("ticktide_worker_ready", "1 when assigned and recovered (see /ready)",
                                value=1 if probe.ready()[0] else 0)
        yield GaugeMetricFamily("ticktide_worker_uptime_seconds", "Seconds since the worker started",
                                value=time.time() - app.started_at)
        errors = CounterMetricFamily("ticktide_agent_errors", "Records an agent failed on (retried or dead-lettered)",
                                     labels=["agent"])
        for agent in sorted(probe.agents):
            errors.add_metric([agent], probe.errors_of(agent))
        yield errors


def _size(table: Any) -> int:
    try:
        return len(table)
    except Exception:  # a store that cannot count while recovering
        return 0


def _safe(figure: Any) -> int:
    try:
        return int(figure())
    except Exception:  # no assignment yet
        return 0


def install_ops_metrics(app: TickTideApp) -> None:
    """Add the scrape-time collector to the app's metrics registry."""
    app.metrics.registry.register(OpsCollector(app))
