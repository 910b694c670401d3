"""Finding a range of event time in a partition (streams/tools/event_time_search.py): the
offsets found hold every record of the range, in a near-ordered partition and in one that
is several ordered runs (a recording produced between two stretches of a live feed)."""

from __future__ import annotations

import random

from streams.tools.event_time_search import WITHIN, TimeWindow, hull_of, ordered_runs
from streams.tools.replay import Bound

MINUTE = 60_000_000


def _reads(times: list[int]) -> tuple[list[int], object]:
    reads: list[int] = []

    def time_at(offset: int) -> int:
        reads.append(offset)
        return times[offset]
    return reads, time_at


def _inside(times: list[int], window: TimeWindow) -> list[int]:
    return [o for o, t in enumerate(times) if window.holds(t)]


def test_a_recording_between_two_live_stretches_is_found_whole() -> None:
    today, recorded = 1_790_000_000 * 1_000_000, 1_721_347_022 * 1_000_000
    live = [today + i * 5_000 for i in range(30_000)]
    recording = [recorded + i * 20_000 for i in range(25_000)]  # ~8 minutes of trades
    times = live + recording + [today + 200 * MINUTE + i * 5_000 for i in range(30_000)]
    window = TimeWindow(recorded + MINUTE, recorded + 6 * MINUTE)
    reads, time_at = _reads(times)
    first, stop = hull_of(time_at, 0, len(times), window)  # type: ignore[arg-type]
    inside = _inside(times, window)
    assert first <= inside[0] and inside[-1] < stop
    assert first >= len(live) and stop <= len(live) + len(recording) + WITHIN  # no live stretch read
    assert len(set(reads)) < 200  # a search, not a scan


def test_disorder_within_the_slack_is_included_and_nothing_outside_is_needed() -> None:
    rng = random.Random(7)
    times = [i * 1_000 + rng.randrange(-30_000_000, 30_000_000) for i in range(100_000)]  # +-30 s
    for low, high in ((10 * MINUTE // 1_000, 40 * MINUTE // 1_000), (0, 1), (99_000, 10**9)):
        window = TimeWindow(low * 1_000, high * 1_000)
        _, time_at = _reads(times)
        first, stop = hull_of(time_at, 0, len(times), window)  # type: ignore[arg-type]
        inside = _inside(times, window)
        assert not inside or (first <= inside[0] and inside[-1] < stop)


def test_a_window_no_run_reaches_gives_an_empty_range() -> None:
    times = [MINUTE * 100 + i for i in range(50_000)]
    _, time_at = _reads(times)
    first, stop = hull_of(time_at, 0, len(times), TimeWindow(0, MINUTE))  # type: ignore[arg-type]
    assert first == stop
    _, time_at = _reads(times)
    first, stop = hull_of(time_at, 0, len(times), TimeWindow(MINUTE * 200, None))  # type: ignore[arg-type]
    assert first == stop


def test_runs_split_where_time_jumps_back() -> None:
    times = [1_000 * MINUTE + i for i in range(40_000)] + [10 * MINUTE + i for i in range(40_000)]
    _, time_at = _reads(times)
    assert ordered_runs(time_at, 0, len(times)) == [(0, 40_000), (40_000, 80_000)]  # type: ignore[arg-type]


def test_a_time_bound_keeps_its_microseconds() -> None:
    bound = Bound.parse("2024-07-19T00:05:02.282001Z", "to")
    assert bound.time_us is not None and bound.time_us % 1_000_000 == 282_001
