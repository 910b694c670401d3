"""Operational metrics computed when Prometheus scrapes: consumer lag per partition,
the topics each agent reads, table sizes, recovery progress, lifecycle and readiness.

Counters and histograms that agents update as they go live in streams/ops/metrics.py and
streams/ops/worker_status.py; this collector adds what is cheapest to read at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from schemas.records import Lifecycle
from streams.ops.worker_status import WorkerStatus


class OpsCollector(Collector):
    """Scrape-time metrics of one worker."""

    def __init__(self, status: WorkerStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status, runtime = self.status, self.status.runtime
        # What each agent reads, one series per (agent, topic): its events are counted once,
        # in ticktide_events_processed_total{agent}; join on agent to see them by topic.
        inputs = InfoMetricFamily("ticktide_agent_input", "A topic an agent consumes", labels=["agent", "topic"])
        for agent in sorted(status.agents):
            for topic in sorted(status.input_topics(agent)):
                inputs.add_metric([agent, topic], {})
        yield inputs

        lag = GaugeMetricFamily("ticktide_consumer_lag_records",
                                "Records between this worker's position and the partition end",
                                labels=["topic", "partition"])
        for where, n in status.lag().items():
            topic, _, partition = where.rstrip("]").rpartition("[")
            lag.add_metric([topic, partition], n)
        yield lag

        sizes = GaugeMetricFamily("ticktide_table_keys", "Keys in this worker's part of a table",
                                  labels=["table"])
        for name, size in sorted(runtime.table_sizes().items()):
            sizes.add_metric([name], size)
        yield sizes

        remaining = GaugeMetricFamily("ticktide_recovery_remaining_records",
                                      "Changelog records still to read before tables are recovered",
                                      labels=["kind"])
        for kind, n in sorted(runtime.recovery_remaining().items()):
            remaining.add_metric([kind], n)
        yield remaining
        yield GaugeMetricFamily("ticktide_recovery_in_progress", "1 while tables recover",
                                value=1 if runtime.recovering() else 0)

        state = GaugeMetricFamily("ticktide_worker_lifecycle", "1 for the worker's current lifecycle state",
                                  labels=["state"])
        for lifecycle in Lifecycle:
            state.add_metric([lifecycle.value.lower()], 1 if status.lifecycle is lifecycle else 0)
        yield state
        yield GaugeMetricFamily("ticktide_worker_ready", "1 when assigned and recovered (see /ready)",
                                value=1 if status.ready()[0] else 0)
        yield GaugeMetricFamily("ticktide_worker_uptime_seconds", "Seconds since the worker started",
                                value=time.time() - status.started_at)
        errors = CounterMetricFamily("ticktide_agent_errors", "Records an agent failed on (retried or dead-lettered)",
                                     labels=["agent"])
        for agent in sorted(status.agents):
            errors.add_metric([agent], status.errors_of(agent))
        yield errors


def install_ops_metrics(registry: CollectorRegistry, status: WorkerStatus) -> None:
    """Add the scrape-time collector to a worker's metrics registry."""
    registry.register(OpsCollector(status))
