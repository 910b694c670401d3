"""The health fold: heartbeats and status changes -> one typed state per component
instance (domain/fold.py's shape: ``evolve(state, input) -> (state, [])``), and the rules
that judge it at a given time (missed heartbeats -> FAILED, uptime %, latency percentiles).

Pure: times in microseconds since the epoch, the clock injected by the caller. An input
at or before the last one seen changes nothing, so a re-delivered heartbeat or status
change is harmless even when it comes from the other input topic than the last one
applied (``domain.fold.step`` skips re-deliveries of the same topic by position).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.fold import Position

MISSED_BEATS = 3  # this many periods without a beat: the instance has failed
LATENCY_WINDOW_US = 300 * 1_000_000  # percentiles over the last 5 minutes
MAX_LATENCY_SAMPLES = 600
FORGET_AFTER_US = 600 * 1_000_000  # a failed instance silent this long leaves the view
UP_STATES = frozenset({"RUNNING"})
GONE_STATES = frozenset({"STOPPED"})  # left cleanly: not a failure, not counted any more
SEVERITY = ("RUNNING", "STARTING", "CONFIGURED", "INITIALIZED", "STOPPING", "DEGRADED", "FAILED")


@dataclass(frozen=True)
class Beat:
    """What the fold needs from one Heartbeat."""

    component: str
    worker_id: str
    at_us: int
    lifecycle: str
    period_s: float
    processed: int
    rate: float
    errors: int
    lag: int
    last_event_us: int | None = None
    latency_ms: tuple[float, ...] = ()
    dependencies: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChange:
    """What the fold needs from one ComponentStatus (a lifecycle change)."""

    component: str
    worker_id: str
    at_us: int
    lifecycle: str
    detail: str = ""


HealthInput = Beat | StatusChange


@dataclass(slots=True)
class InstanceHealth:
    """The fold's state of one component instance (JSON-trivial fields: ``to_row``)."""

    component: str
    worker_id: str
    first_seen_us: int
    last_seen_us: int
    lifecycle: str = "INITIALIZED"
    period_s: float = 5.0
    beats: int = 0
    last_beat_us: int = -1
    processed: int = 0
    rate: float = 0.0
    errors: int = 0
    lag: int = 0
    last_event_us: int | None = None
    dependencies: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    up_us: int = 0
    first_up_us: int | None = None
    latency: list[tuple[int, float]] = field(default_factory=list)
    """(at_us, ms) samples within the latency window."""
    applied: Position = field(default_factory=Position)

    @classmethod
    def first_seen(cls, item: HealthInput) -> InstanceHealth:
        """The state of an instance before its first input."""
        return cls(item.component, item.worker_id, item.at_us, item.at_us)


def _advance(state: InstanceHealth, at_us: int, lifecycle: str) -> None:
    """Account the time since the last sighting as up or down, then move to ``at_us``
    (uptime counts from the first time the instance was up, not from its start-up)."""
    if lifecycle in UP_STATES and state.first_up_us is None:
        state.first_up_us = at_us
    gap = at_us - state.last_seen_us
    if gap <= 0:
        return
    if state.lifecycle in UP_STATES:
        state.up_us += min(gap, int(state.period_s * MISSED_BEATS * 1_000_000))
    state.last_seen_us = at_us


def evolve(state: InstanceHealth, item: HealthInput) -> tuple[InstanceHealth, list[Any]]:
    """Fold one heartbeat or status change (the fold emits nothing)."""
    if item.at_us < state.last_seen_us or (isinstance(item, Beat) and item.at_us <= state.last_beat_us):
        return state, []  # older than what is known, or a heartbeat applied already
    _advance(state, item.at_us, item.lifecycle)
    state.lifecycle = item.lifecycle
    if isinstance(item, StatusChange):
        state.detail = item.detail
        return state, []
    state.period_s, state.processed, state.rate = item.period_s, item.processed, item.rate
    state.errors, state.lag, state.dependencies = item.errors, item.lag, dict(item.dependencies)
    state.beats, state.last_beat_us = state.beats + 1, item.at_us
    if item.last_event_us is not None:
        state.last_event_us = item.last_event_us
    samples = [s for s in state.latency if s[0] > item.at_us - LATENCY_WINDOW_US]
    samples += [(item.at_us, ms) for ms in item.latency_ms]
    state.latency = samples[-MAX_LATENCY_SAMPLES:]
    return state, []


def to_row(state: InstanceHealth) -> dict[str, Any]:
    """The state as a JSON row."""
    row = dataclasses.asdict(state)
    row["applied"] = [state.applied.partition, state.applied.offset, state.applied.topic]
    return row


def from_row(row: Mapping[str, Any]) -> InstanceHealth:
    """The state of a JSON row (``to_row``)."""
    values = dict(row)
    values["applied"] = Position(*values.get("applied", ()))
    values["latency"] = [(int(at), float(ms)) for at, ms in values.get("latency", [])]
    return InstanceHealth(**values)


def percentiles(values: Iterable[float]) -> dict[str, float] | None:
    """Nearest-rank p50/p95/p99 (None without values)."""
    ordered = sorted(values)
    if not ordered:
        return None

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 3)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "samples": len(ordered)}


def judge(state: InstanceHealth, now_us: int, window_us: int = LATENCY_WINDOW_US) -> dict[str, Any]:
    """How one component instance is doing at ``now_us``."""
    silent_us = max(0, now_us - state.last_seen_us)
    allowed_us = int(state.period_s * MISSED_BEATS * 1_000_000)
    status = "FAILED" if silent_us > allowed_us and state.lifecycle not in GONE_STATES else state.lifecycle
    if status == "RUNNING" and "DOWN" in state.dependencies.values():
        status = "DEGRADED"
    first_up = state.first_up_us
    observed = max(1, now_us - first_up) if first_up is not None else 1
    up = state.up_us + (min(silent_us, allowed_us) if state.lifecycle in UP_STATES else 0)
    return {
        "component": state.component, "worker_id": state.worker_id, "status": status,
        "last_seen_s_ago": round(silent_us / 1_000_000, 3), "processed": state.processed,
        "events_per_second": state.rate, "errors": state.errors, "lag": state.lag,
        "last_event_us": state.last_event_us, "dependencies": state.dependencies,
        "detail": state.detail, "uptime_pct": round(100.0 * min(up, observed) / observed, 2),
        "latency_ms": percentiles(ms for at, ms in state.latency if at > now_us - window_us),
    }


def worst(statuses: Iterable[str]) -> str:
    """The most severe of some statuses (RUNNING for none)."""
    return max(statuses, key=SEVERITY.index, default="RUNNING")


def system_view(states: Iterable[InstanceHealth], now_us: int) -> dict[str, Any]:
    """The whole system: every instance judged, grouped per worker and per component."""
    states = list(states)
    judged = [(s, judge(s, now_us)) for s in states]
    live = [(s, j) for s, j in judged if j["status"] not in GONE_STATES
            and now_us - s.last_seen_us <= FORGET_AFTER_US]
    workers: dict[str, dict[str, Any]] = {}
    components: dict[str, list[tuple[InstanceHealth, dict[str, Any]]]] = {}
    for s, j in live:
        workers.setdefault(j["worker_id"], {})[j["component"]] = j
        if j["component"] != "worker":
            components.setdefault(j["component"], []).append((s, j))
    return {
        "status": worst(j["status"] for _, j in live),
        "workers": {w: {"status": worst(j["status"] for j in js.values()), "components": js}
                    for w, js in sorted(workers.items())},
        "components": {name: _component(pairs, now_us) for name, pairs in sorted(components.items())},
    }


def _component(pairs: list[tuple[InstanceHealth, dict[str, Any]]], now_us: int) -> dict[str, Any]:
    """One agent across its instances: worst status, sums, merged latency window."""
    instances = [j for _, j in pairs]
    samples = [ms for s, _ in pairs for at, ms in s.latency if at > now_us - LATENCY_WINDOW_US]
    return {
        "status": worst(i["status"] for i in instances),
        "instances": len(instances),
        "processed": sum(i["processed"] for i in instances),
        "events_per_second": round(sum(i["events_per_second"] for i in instances), 3),
        "errors": sum(i["errors"] for i in instances),
        "lag": sum(i["lag"] for i in instances),
        "uptime_pct": min(i["uptime_pct"] for i in instances),
        "latency_ms": percentiles(samples),
    }
