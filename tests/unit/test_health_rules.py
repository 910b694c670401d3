"""Health rules with plain values and an explicit clock: the health fold (domain/fold.py's
shape) and how its state is judged."""

from __future__ import annotations

import json

from domain.fold import Position, step
from domain.ops.health import (
    FORGET_AFTER_US,
    Beat,
    HealthInput,
    InstanceHealth,
    StatusChange,
    evolve,
    from_row,
    judge,
    percentiles,
    system_view,
    to_row,
)

S = 1_000_000
T0 = 1_700_000_000 * S


def beat(at_s: float, component: str = "market.trades", worker: str = "w1", **extra: object) -> Beat:
    values: dict = {"lifecycle": "RUNNING", "period_s": 5.0, "processed": 10, "rate": 2.0, "errors": 0,
                    "lag": 0}
    values.update(extra)
    return Beat(component=component, worker_id=worker, at_us=T0 + int(at_s * S), **values)


def status(at_s: float, lifecycle: str, detail: str = "", component: str = "market.trades") -> StatusChange:
    return StatusChange(component=component, worker_id="w1", at_us=T0 + int(at_s * S), lifecycle=lifecycle,
                        detail=detail)


def fold(*inputs: HealthInput, state: InstanceHealth | None = None) -> InstanceHealth:
    state = state or InstanceHealth.first_seen(inputs[0])
    for item in inputs:
        state, outputs = evolve(state, item)
        assert not outputs
    return state


def test_a_component_beating_on_time_is_running_with_full_uptime() -> None:
    state = fold(*(beat(t) for t in range(0, 60, 5)))
    view = judge(state, T0 + 57 * S)
    assert view["status"] == "RUNNING"
    assert view["uptime_pct"] == 100.0
    assert view["processed"] == 10


def test_three_missed_heartbeats_mean_failed() -> None:
    state = fold(beat(0), beat(5))
    assert judge(state, T0 + 19 * S)["status"] == "RUNNING"
    assert judge(state, T0 + 21 * S)["status"] == "FAILED"


def test_a_cleanly_stopped_component_is_not_failed_and_leaves_the_system_view() -> None:
    state = fold(beat(0), status(1, "STOPPED", "shutdown"))
    assert judge(state, T0 + 100 * S)["status"] == "STOPPED"
    assert system_view([state], T0 + 100 * S)["components"] == {}


def test_uptime_counts_the_silent_gap_as_down() -> None:
    # beats at 0, 5, 10 s (10 s up), then silent until 60 s: 15 s of the gap (3 periods)
    # still count as up, the other 35 s as down: 25 of 60 s up
    state = fold(beat(0), beat(5), beat(10), beat(60))
    assert judge(state, T0 + 60 * S)["uptime_pct"] == round(100 * 25 / 60, 2)


def test_latency_percentiles_cover_only_the_sliding_window() -> None:
    old = beat(0, latency_ms=(1000.0,) * 50)
    recent = beat(400, latency_ms=tuple(float(v) for v in range(1, 101)))
    view = judge(fold(old, recent), T0 + 401 * S)
    assert view["latency_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "samples": 100}


def test_percentiles_of_nothing_is_none() -> None:
    assert percentiles([]) is None


def test_a_redelivered_beat_changes_nothing() -> None:
    state = fold(beat(0, processed=5), beat(10, processed=50, latency_ms=(3.0,)))
    before = to_row(state)
    assert to_row(fold(beat(5, processed=7), state=state)) == before  # an older one
    assert to_row(fold(beat(10, processed=50, latency_ms=(3.0,)), state=state)) == before  # the same one


def test_step_skips_what_the_state_holds_per_topic() -> None:
    state = InstanceHealth.first_seen(beat(0))
    state, _ = step(evolve, state, beat(0), 0, 7, "system.heartbeats")
    assert state.applied == Position(0, 7, "system.heartbeats")
    state, _ = step(evolve, state, status(1, "STOPPING"), 0, 3, "system.status")  # another topic's offset 3
    assert state.lifecycle == "STOPPING" and state.applied == Position(0, 3, "system.status")
    state, _ = step(evolve, state, status(1, "STOPPING"), 0, 3, "system.status")
    assert state.beats == 1


def test_the_state_survives_its_json_row() -> None:
    state = fold(status(0, "STARTING"), beat(5, latency_ms=(1.5, 2.5), dependencies={"broker": "HEALTHY"}))
    state.applied = Position(0, 9, "system.heartbeats")
    assert from_row(json.loads(json.dumps(to_row(state)))) == state


def test_a_down_dependency_degrades_a_running_component() -> None:
    state = fold(beat(0, dependencies={"broker": "HEALTHY", "claude": "DOWN"}))
    assert judge(state, T0 + 1 * S)["status"] == "DEGRADED"


def test_system_view_groups_per_worker_and_per_component_with_the_worst_status() -> None:
    states = [fold(beat(0, worker="w1", processed=10)), fold(beat(0, worker="w2", processed=5)),
              fold(beat(0, component="worker", worker="w1")),
              fold(beat(-30, component="worker", worker="w2"))]
    view = system_view(states, T0 + 1 * S)
    assert view["status"] == "FAILED"
    assert view["workers"]["w2"]["status"] == "FAILED"
    assert view["workers"]["w1"]["status"] == "RUNNING"
    assert view["components"]["market.trades"]["processed"] == 15
    assert view["components"]["market.trades"]["instances"] == 2


def test_a_long_failed_instance_is_forgotten() -> None:
    states = [fold(beat(0, worker="gone")), fold(beat(FORGET_AFTER_US / S, worker="w1"))]
    view = system_view(states, T0 + FORGET_AFTER_US + 2 * S)
    assert list(view["workers"]) == ["w1"]
    assert view["status"] == "RUNNING"


def test_uptime_counts_from_the_first_time_up_not_from_start_up() -> None:
    state = fold(status(0, "STARTING", "worker started"), beat(20), beat(25), beat(30))
    assert judge(state, T0 + 30 * S)["uptime_pct"] == 100.0
    assert judge(fold(status(0, "STARTING", component="x")), T0 + 5 * S)["uptime_pct"] == 0.0
