"""Finding a range of event time (the envelope's) in a partition, by offsets.

A partition is close to time-ordered in event time: a live feed appends trades about as
they happen. It is not exactly ordered (late trades), and a topic that holds a recording
beside a live feed is several ordered runs one after the other (today's trades, then
2024's, then today's again). So: probe the partition at a few offsets, split it into runs
where its time jumps back by more than the slack, binary-search each run for
[low - slack, high + slack), and return the hull of what the runs hold. The replay then
reads the hull and keeps exactly the records of [low, high): the search only has to
include every record of the range, never to be exact. A partition small enough is read
whole instead, which is exact whatever its order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from confluent_kafka import Consumer, TopicPartition

from domain.clock import to_micros
from streams.errors import BrokerError, DecodeError
from streams.kafka.admin import resolve_flavor
from streams.kafka.codec import AvroCodec
from streams.kafka.ranges import read_partition
from streams.settings import Settings

SLACK_US = 5 * 60 * 1_000_000
"""How far out of order (event time) a record may be and still be found by the search."""
PROBES = 16
"""Offsets probed per partition to find its ordered runs."""
WITHIN = 256
"""The searched bounds are found to this many offsets: reading them costs less than probing."""
READ_WHOLE_BELOW = 20_000
"""A partition range with fewer records is read whole (exact, whatever its order)."""


@dataclass(frozen=True)
class TimeWindow:
    """[low, high) of event time in microseconds; None = unbounded."""

    low_us: int | None = None
    high_us: int | None = None

    def holds(self, time_us: int) -> bool:
        """Whether ``time_us`` is inside the window."""
        return (self.low_us is None or time_us >= self.low_us) and (self.high_us is None or time_us < self.high_us)

    @property
    def bounded(self) -> bool:
        """Whether either end is set."""
        return self.low_us is not None or self.high_us is not None


def _lower_bound(time_at: Callable[[int], int], start: int, end: int, target_us: int,
                 within: int = 0, upper: bool = False) -> int:
    """The first offset in [start, end) whose time is >= target, for times ordered there;
    found to ``within`` offsets (then the low end of what is left, or the high end with
    ``upper``: the caller reads a little more, never less)."""
    low, high = start, end
    while high - low > within:
        middle = (low + high) // 2
        if time_at(middle) < target_us:
            low = middle + 1
        else:
            high = middle
    return high if upper else low


def ordered_runs(time_at: Callable[[int], int], start: int, end: int, slack_us: int = SLACK_US,
                 probes: int = PROBES) -> list[tuple[int, int]]:
    """[start, end) split where time jumps back by more than ``slack_us`` between probes."""
    if end - start <= 1:
        return [(start, end)] if end > start else []
    step = max(1, (end - 1 - start) // probes)
    offsets = sorted({*range(start, end - 1, step), end - 1})
    times = [time_at(o) for o in offsets]
    cuts = []
    for (before, t_before), (after, t_after) in pairwise(zip(offsets, times, strict=True)):
        if t_after < t_before - slack_us:  # a new run starts in (before, after]
            cuts.append(_lower_bound(lambda o: -time_at(o), before + 1, after, -(t_before - slack_us) + 1))
    edges = [start, *cuts, end]
    return [(a, b) for a, b in pairwise(edges) if b > a]


def hull_of(time_at: Callable[[int], int], start: int, end: int, window: TimeWindow,
            slack_us: int = SLACK_US, probes: int = PROBES, within: int = WITHIN) -> tuple[int, int]:
    """Offsets [first, stop) that hold every record of ``window`` in [start, end) (up to
    ``slack_us`` of disorder; the bounds found to ``within`` offsets, read rather than
    searched); (start, start) when no run reaches the window."""
    found: list[tuple[int, int]] = []
    for run_start, run_end in ordered_runs(time_at, start, end, slack_us, probes):
        if ((window.high_us is not None and time_at(run_start) >= window.high_us + slack_us)
                or (window.low_us is not None and time_at(run_end - 1) < window.low_us - slack_us)):
            continue  # the run is all after or all before the window
        first = run_start if window.low_us is None else _lower_bound(time_at, run_start, run_end,
                                                                     window.low_us - slack_us, within)
        stop = run_end if window.high_us is None else _lower_bound(time_at, first, run_end,
                                                                   window.high_us + slack_us, within, upper=True)
        if first < stop:
            found.append((first, stop))
    if not found:
        return start, start
    return min(f for f, _ in found), max(s for _, s in found)


class EventTimeSearch:
    """Reads single records of a topic by offset for their event time (the record
    timestamp for a record that does not decode)."""

    def __init__(self, settings: Settings, topic: str, codec: AvroCodec) -> None:
        self.settings, self.topic, self.codec = settings, topic, codec
        self._consumer = Consumer({**settings.kafka_client_config(), "group.id": f"ticktide-search-{uuid.uuid4()}",
                                   "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                   # one record per read: an engine that answers a fetch only when
                                   # its wait is over (Tansu) would cost 0.5 s a probe
                                   "fetch.wait.max.ms": resolve_flavor(settings).fetch_max_wait_ms})
        self._cache: dict[tuple[int, int], int] = {}

    def time_at(self, partition: int, offset: int, timeout: float = 30.0) -> int:
        """The event time (us) of the record at ``offset`` (or the next existing one)."""
        if (partition, offset) not in self._cache:
            self._consumer.assign([TopicPartition(self.topic, partition, offset)])
            good = [m for m in self._consumer.consume(1, timeout=timeout) if m.error() is None]
            if not good:
                raise BrokerError(f"no record at {self.topic}[{partition}]@{offset}")
            self._cache[(partition, offset)] = self._event_time(good[0].value(), good[0].timestamp()[1])
        return self._cache[(partition, offset)]

    def _event_time(self, value: bytes | None, timestamp_ms: int) -> int:
        try:
            return to_micros(self.codec.decode(value).envelope.event_time)
        except DecodeError:
            return timestamp_ms * 1000

    def hull(self, partition: int, start: int, end: int, window: TimeWindow) -> tuple[int, int]:
        """Offsets [first, stop) of ``partition`` that hold every record of ``window``."""
        if end - start < READ_WHOLE_BELOW:
            return self._read_whole(partition, start, end, window)
        return hull_of(lambda o: self.time_at(partition, o), start, end, window)

    def _read_whole(self, partition: int, start: int, end: int, window: TimeWindow) -> tuple[int, int]:
        inside = [raw.offset for raw in read_partition(self.settings, self.topic, partition, start, end)
                  if window.holds(self._event_time(raw.value, raw.timestamp_ms))]
        return (min(inside), max(inside) + 1) if inside else (start, start)

    def close(self) -> None:
        """Release the consumer."""
        self._consumer.close()
