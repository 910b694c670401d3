"""What a worker knows about itself: lifecycle, per-agent throughput, errors, latency,
consumer lag and dependency status. The heartbeat agent publishes it; /live, /ready and
/metrics read it.

Agents report through the app: ``app.count_processed(agent, n)`` (every agent already
calls it), ``app.worker_status.observe_latency(agent, seconds)`` and
``app.worker_status.error(agent)``. What only Faust knows (assignment, positions, recovery)
comes through ``RuntimeFacts``, implemented over Faust in streams/faust/runtime.py.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry

from schemas.records import Lifecycle
from streams.ops.metrics import BatchHistogram
from streams.settings import Settings

log = logging.getLogger(__name__)
SAMPLE_PER_BEAT = 50
HEALTHY, DOWN, NOT_CONFIGURED = "HEALTHY", "DOWN", "NOT_CONFIGURED"


@dataclass
class AgentStats:
    """Counters of one agent in this process."""

    processed: int = 0
    errors: int = 0
    last_event_s: float | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    _rate_mark: tuple[float, int] = (0.0, 0)

    def rate(self, now: float) -> float:
        """Events per second since the previous call."""
        then, count = self._rate_mark
        self._rate_mark = (now, self.processed)
        return round((self.processed - count) / (now - then), 3) if then and now > then else 0.0

    def drain_latency_ms(self) -> list[float]:
        """An even sample of the latencies seen since the previous call, in ms."""
        values = list(self.latencies)
        self.latencies.clear()
        step = max(1, len(values) // SAMPLE_PER_BEAT)
        return [round(v * 1000, 3) for v in values[::step][:SAMPLE_PER_BEAT]]


class RuntimeFacts(Protocol):
    """What the stream runtime (Faust) knows about this worker."""

    def input_topics(self, agent: str) -> set[str]:
        """The topics an agent consumes."""
        ...

    def assigned(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this worker's agents own, sorted."""
        ...

    def lag(self, topics: set[str] | None = None) -> dict[str, int]:
        """Records behind the fetched end, per assigned partition ("topic[p]")."""
        ...

    def recovered(self) -> bool:
        """Table recovery has finished for the current assignment."""
        ...

    def rebalancing(self) -> bool:
        """The consumer group is rebalancing."""
        ...

    def recovering(self) -> bool:
        """Tables are being recovered from their changelogs."""
        ...

    def recovery_remaining(self) -> dict[str, int]:
        """Changelog records still to read, for "active" and "standby" tables."""
        ...

    def table_sizes(self) -> dict[str, int]:
        """Keys in this worker's part of each table."""
        ...


class WorkerStatus:
    """This worker's own view of itself."""

    def __init__(self, settings: Settings, registry: CollectorRegistry, runtime: RuntimeFacts,
                 dead_letter_counts: Counter[tuple[str, str]]) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.runtime = runtime
        self.dead_letter_counts = dead_letter_counts
        """Records dead-lettered per (agent, reason): the dead-letter policy's own counter."""
        self.lifecycle = Lifecycle.INITIALIZED
        self.agents: dict[str, AgentStats] = {}
        self.dependencies: dict[str, str] = {}
        self.failures: dict[str, str] = {}
        """Components that died (a bug, not a bad record): name -> why. Not ready while any."""
        self.histogram = _latency_histogram(registry)

    def fail(self, component: str, error: BaseException) -> None:
        """``component`` died: it is FAILED and the worker is not ready until restarted."""
        reason = f"{type(error).__name__}: {error}"[:500]
        self.failures.setdefault(component, reason)
        log.error("component %s FAILED: %s", component, reason, exc_info=error)

    def stats(self, agent: str) -> AgentStats:
        """The counters of one agent (created on first use)."""
        return self.agents.setdefault(agent, AgentStats())

    def processed(self, agent: str, n: int = 1) -> None:
        """``n`` events finished by ``agent``."""
        stats = self.stats(agent)
        stats.processed += n
        stats.last_event_s = time.time()

    def observe_latency(self, agent: str, seconds: Iterable[float]) -> None:
        """Processing latencies (arrival at the worker -> done) of some events."""
        values = list(seconds)
        self.stats(agent).latencies.extend(values)
        self.histogram.observe_many(values, agent)

    def error(self, agent: str, n: int = 1) -> None:
        """``n`` records ``agent`` failed on (retried or dead-lettered)."""
        self.stats(agent).errors += n

    def errors_of(self, agent: str) -> int:
        """Failures of ``agent``: its own count plus its dead letters."""
        dead = sum(n for (name, _), n in self.dead_letter_counts.items() if name == agent)
        return self.stats(agent).errors + dead

    def input_topics(self, agent: str) -> set[str]:
        """The topics an agent consumes."""
        return self.runtime.input_topics(agent)

    def lag(self, topics: set[str] | None = None) -> dict[str, int]:
        """Records behind the fetched end, per assigned partition ("topic[p]")."""
        return self.runtime.lag(topics)

    def recovered(self) -> bool:
        """Table recovery has finished for the current assignment."""
        return self.runtime.recovered()

    def ready(self) -> tuple[bool, str]:
        """Assigned and recovered: ready to serve (with the reason when not)."""
        if self.failures:
            component, reason = next(iter(self.failures.items()))
            return False, f"{component} FAILED: {reason}"
        if self.lifecycle not in (Lifecycle.RUNNING, Lifecycle.DEGRADED):
            return False, f"lifecycle is {self.lifecycle.value}"
        if self.runtime.rebalancing():
            return False, "rebalancing"
        if not self.runtime.assigned():
            return False, "no partitions assigned"
        if not self.recovered():
            return False, "tables recovering"
        return True, "ready"

    def check_dependencies(self, broker_ok: bool) -> dict[str, str]:
        """Broker, schema registry and Claude status (blocking: call in a thread)."""
        settings = self.settings
        deps = {"broker": HEALTHY if broker_ok else DOWN,
                "schema_registry": _reachable(f"{settings.schema_registry_url.rstrip('/')}/subjects")
                if settings.schema_registry_url else NOT_CONFIGURED,
                "claude": HEALTHY if settings.anthropic_api_key else NOT_CONFIGURED}
        self.dependencies = deps
        return deps


def _reachable(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return HEALTHY if response.status < 500 else DOWN
    except OSError:
        return DOWN


def _latency_histogram(registry: CollectorRegistry) -> BatchHistogram:
    return BatchHistogram("ticktide_processing_latency_seconds",
                          "From an event's arrival at the worker to the end of its processing, per event "
                          "(market.trades: from the trade record's broker timestamp to its fold into candles)",
                          ["agent"], registry=registry)

