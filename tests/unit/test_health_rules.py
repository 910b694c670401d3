"""Health rules with plain values and an explicit clock."""

from __future__ import annotations

from domain.health import (
    FORGET_AFTER_US,
    Beat,
    apply_beat,
    apply_status,
    judge,
    percentiles,
    system_view,
)

S = 1_000_000
T0 = 1_700_000_000 * S


def beat(at_s: float, component: str = "market.trades", worker: str = "w1", **extra: object) -> Beat:
    values: dict = {"lifecycle": "RUNNING", "period_s": 5.0, "processed": 10, "rate": 2.0, "errors": 0,
                    "lag": 0}
    values.update(extra)
    return Beat(component=component, worker_id=worker, at_us=T0 + int(at_s * S), **values)


def fold(*beats: Beat) -> dict:
    state = None
    for b in beats:
        state = apply_beat(state, b)
    assert state is not None
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
    state = fold(beat(0))
    state = apply_status(state, "market.trades", "w1", T0 + 1 * S, "STOPPED", "shutdown")
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


def test_a_redelivered_old_beat_changes_nothing() -> None:
    state = fold(beat(0, processed=5), beat(10, processed=50))
    assert apply_beat(state, beat(5, processed=7)) == state


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
    state = apply_status(None, "market.trades", "w1", T0, "STARTING", "worker started")
    state = fold_onto(state, beat(20), beat(25), beat(30))
    assert judge(state, T0 + 30 * S)["uptime_pct"] == 100.0
    assert judge(apply_status(None, "x", "w1", T0, "STARTING", ""), T0 + 5 * S)["uptime_pct"] == 0.0


def fold_onto(state: dict, *beats: Beat) -> dict:
    for b in beats:
        state = apply_beat(state, b)
    return state
