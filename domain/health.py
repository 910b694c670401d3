"""Health rules: fold heartbeats and status changes into one state per component instance,
and judge it at a given time (missed heartbeats -> FAILED, uptime %, latency percentiles).

Pure: plain dicts in and out (the health table stores them as JSON), times in
microseconds since the epoch, the clock injected by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MISSED_BEATS = 3  # this many periods without a beat: the instance has failed
LATENCY_WINDOW_US = 300 * 1_000_000  # percentiles over the last 5 minutes
MAX_LATENCY_SAMPLES = 600
FORGET_AFTER_US = 600 * 1_000_000  # a failed instance silent this long leaves the view
UP_STATES = frozenset({"RUNNING"})
GONE_STATES = frozenset({"STOPPED"})  # left cleanly: not a failure, not counted any more
SEVERITY = ("RUNNING", "STARTING", "CONFIGURED", "INITIALIZED", "STOPPING", "DEGRADED", "FAILED")

State = dict[str, Any]


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


def _new(component: str, worker_id: str, at_us: int) -> State:
    return {"component": component, "worker_id": worker_id, "lifecycle": "INITIALIZED",
            "first_seen_us": at_us, "last_seen_us": at_us, "period_s": 5.0, "beats": 0,
            "processed": 0, "rate": 0.0, "errors": 0, "lag": 0, "last_event_us": None,
            "dependencies": {}, "detail": "", "up_us": 0, "first_up_us": None, "latency": []}


def _advance(state: State, at_us: int, lifecycle: str) -> None:
    """Account the time since the last sighting as up or down, then move to ``at_us``
    (uptime counts from the first time the instance was up, not from its start-up)."""
    if lifecycle in UP_STATES and state.get("first_up_us") is None:
        state["first_up_us"] = at_us
    gap = at_us - state["last_seen_us"]
    if gap <= 0:
        return
    allowed = int(state["period_s"] * MISSED_BEATS * 1_000_000)
    if state["lifecycle"] in UP_STATES:
        state["up_us"] += min(gap, allowed)
    state["last_seen_us"] = at_us


def apply_beat(state: State | None, beat: Beat, window_us: int = LATENCY_WINDOW_US) -> State:
    """The state after one heartbeat (an older, re-delivered beat changes only counters
    that only grow)."""
    new = dict(state) if state is not None else _new(beat.component, beat.worker_id, beat.at_us)
    if beat.at_us < new["last_seen_us"]:
        return new
    _advance(new, beat.at_us, beat.lifecycle)
    new.update(lifecycle=beat.lifecycle, period_s=beat.period_s, processed=beat.processed,
               rate=beat.rate, errors=beat.errors, lag=beat.lag,
               dependencies=dict(beat.dependencies), beats=new["beats"] + 1)
    if beat.last_event_us is not None:
        new["last_event_us"] = beat.last_event_us
    samples = [s for s in new["latency"] if s[0] > beat.at_us - window_us]
    samples += [[beat.at_us, ms] for ms in beat.latency_ms]
    new["latency"] = samples[-MAX_LATENCY_SAMPLES:]
    return new


def apply_status(state: State | None, component: str, worker_id: str, at_us: int,
                 lifecycle: str, detail: str) -> State:
    """The state after a lifecycle change (ComponentStatus)."""
    new = dict(state) if state is not None else _new(component, worker_id, at_us)
    if at_us < new["last_seen_us"]:
        return new
    _advance(new, at_us, lifecycle)
    new.update(lifecycle=lifecycle, detail=detail)
    return new


def percentiles(values: Iterable[float]) -> dict[str, float] | None:
    """Nearest-rank p50/p95/p99 (None without values)."""
    ordered = sorted(values)
    if not ordered:
        return None

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 3)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "samples": len(ordered)}


def judge(state: State, now_us: int, window_us: int = LATENCY_WINDOW_US) -> dict[str, Any]:
    """How one component instance is doing at ``now_us``."""
    silent_us = max(0, now_us - state["last_seen_us"])
    missed = silent_us > state["period_s"] * MISSED_BEATS * 1_000_000
    status = "FAILED" if missed and state["lifecycle"] not in GONE_STATES else state["lifecycle"]
    down_deps = sorted(name for name, s in state["dependencies"].items() if s == "DOWN")
    if status == "RUNNING" and down_deps:
        status = "DEGRADED"
    first_up = state.get("first_up_us")
    observed = max(1, now_us - first_up) if first_up is not None else 1
    up = state["up_us"] + (min(silent_us, int(state["period_s"] * MISSED_BEATS * 1_000_000))
                           if state["lifecycle"] in UP_STATES else 0)
    return {
        "component": state["component"], "worker_id": state["worker_id"], "status": status,
        "last_seen_s_ago": round(silent_us / 1_000_000, 3), "processed": state["processed"],
        "events_per_second": state["rate"], "errors": state["errors"], "lag": state["lag"],
        "last_event_us": state["last_event_us"], "dependencies": state["dependencies"],
        "detail": state["detail"], "uptime_pct": round(100.0 * min(up, observed) / observed, 2),
        "latency_ms": percentiles(ms for at, ms in state["latency"] if at > now_us - window_us),
    }


def worst(statuses: Iterable[str]) -> str:
    """The most severe of some statuses (RUNNING for none)."""
    return max(statuses, key=SEVERITY.index, default="RUNNING")


def system_view(states: Iterable[State], now_us: int) -> dict[str, Any]:
    """The whole system: every instance judged, grouped per worker and per component."""
    states = list(states)
    judged = [(s, judge(s, now_us)) for s in states]
    live = [(s, j) for s, j in judged if j["status"] not in GONE_STATES
            and now_us - s["last_seen_us"] <= FORGET_AFTER_US]
    workers: dict[str, dict[str, Any]] = {}
    components: dict[str, list[tuple[State, dict[str, Any]]]] = {}
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


def _component(pairs: list[tuple[State, dict[str, Any]]], now_us: int) -> dict[str, Any]:
    """One agent across its instances: worst status, sums, merged latency window."""
    instances = [j for _, j in pairs]
    samples = [ms for s, _ in pairs for at, ms in s["latency"] if at > now_us - LATENCY_WINDOW_US]
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
