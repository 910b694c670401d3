"""Replay a range of a topic into another topic, or into a fresh isolated app instance.

Bounds are offsets (the same for every partition) or times; a time becomes, in each
partition, the first offset whose record timestamp is at or after it, found by binary
search over record timestamps (``streams.kafka.ranges``). The range is [from, to). Records are
copied as stored (key and value bytes), at the original pace times ``speed`` or as fast
as possible. A new app id gets its own topics (every catalog topic, prefixed
``APP_ID.``); its worker runs with ``TICKTIDE_APP_ID=APP_ID TICKTIDE_TOPIC_PREFIX=APP_ID.``,
so it has its own consumer group, tables and outputs and live state is untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from streams.errors import InvalidInput
from streams.kafka.admin import create_topics, end_offsets, list_topics
from streams.kafka.json_form import parse_time
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import TimestampSearch, read_range
from streams.settings import Settings


@dataclass(frozen=True)
class Bound:
    """An offset, or a time in milliseconds since the epoch."""

    offset: int | None = None
    time_ms: int | None = None

    @classmethod
    def parse(cls, text: str, name: str) -> Bound:
        """'12345' is an offset; anything else must be a time (ISO 8601 or epoch seconds)."""
        if text.strip().isdigit():
            return cls(offset=int(text))
        try:
            moment: datetime = parse_time(text)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"--{name} must be an offset or a time (ISO 8601), got {text!r}: {exc}") from None
        return cls(time_ms=int(moment.timestamp() * 1000))


@dataclass
class Plan:
    """What will be replayed: per partition [start, end), and where to."""

    topic: str
    target: str
    starts: list[int]
    ends: list[int]
    new_app: str | None = None

    @property
    def total(self) -> int:
        """Records in the range."""
        return sum(max(0, e - s) for s, e in zip(self.starts, self.ends, strict=True))


@dataclass
class Progress:
    """How far a replay got: records copied and the next offset of each partition."""

    copied: int = 0
    seconds: float = 0.0
    next_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records replayed per second."""
        return self.copied / self.seconds if self.seconds > 0 else 0.0


def _offsets(search: TimestampSearch, bound: Bound, partition: int, low: int, end: int) -> int:
    if bound.offset is not None:
        return max(low, min(bound.offset, end))
    assert bound.time_ms is not None
    return search.first_at_or_after(partition, low, end, bound.time_ms) if low < end else end


def plan(settings: Settings, topic: str, start: Bound, stop: Bound | None, into: str) -> Plan:
    """Resolve bounds to offsets and the target to a topic (creating a new app's topics)."""
    ends = list(end_offsets(settings, topic))
    search = TimestampSearch(settings, topic)
    try:
        starts = [_offsets(search, start, p, 0, end) for p, end in enumerate(ends)]
        stops = ends if stop is None else [_offsets(search, stop, p, s, end)
                                           for p, (s, end) in enumerate(zip(starts, ends, strict=True))]
    finally:
        search.close()
    if into in list_topics(settings):
        return Plan(topic, into, starts, stops)
    if not into or not all(c.isalnum() or c in "._-" for c in into):
        raise InvalidInput(f"--into {into!r} is neither an existing topic nor a valid app id")
    isolated = settings.model_copy(update={"topic_prefix": f"{into}.", "app_id": into})
    create_topics(isolated)
    return Plan(topic, f"{into}.{topic.removeprefix(settings.topic_prefix)}", starts, stops, new_app=into)


def replay(settings: Settings, the_plan: Plan, speed: float | None,
           on_record: Callable[[Progress], None] = lambda _: None,
           stop: threading.Event | None = None) -> Progress:
    """Copy the planned range; ``speed`` None = as fast as possible, else N x the original
    pace. Setting ``stop`` (or a KeyboardInterrupt) stops cleanly: the returned progress
    says where it stopped. Waits for the pace are cut short by ``stop``."""
    stop = stop or threading.Event()
    progress = Progress(next_offsets=dict(enumerate(the_plan.starts)))
    started = time.monotonic()
    first_ms: int | None = None
    producer = EventProducer(settings)
    records = read_range(settings, the_plan.topic, the_plan.starts, the_plan.ends)
    try:
        for raw in records:
            if speed is not None:
                first_ms = raw.timestamp_ms if first_ms is None else first_ms
                ahead = (raw.timestamp_ms - first_ms) / 1000 / speed - (time.monotonic() - started)
                if ahead > 0:
                    stop.wait(ahead)
            if stop.is_set():
                break
            producer.send_raw(the_plan.target, raw.key, raw.value)
            progress.copied += 1
            progress.next_offsets[raw.partition] = raw.offset + 1
            on_record(progress)
    except KeyboardInterrupt:
        pass
    finally:
        records.close()
        producer.flush()
        progress.seconds = time.monotonic() - started
    return progress
