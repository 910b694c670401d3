"""Replay a range of one or several topics into another topic, or into a fresh isolated
app instance, as one history.

Bounds are offsets (the same for every partition) or times. A time is the events' own
time by default (the envelope's event time: the market's clock, whenever the records were
produced): each partition is searched for the offsets that hold the range
(``streams.tools.event_time_search``) and exactly the records of [from, to) are copied.
With ``by="record"`` a time is the record (produce) timestamp instead: in each partition
the first offset whose record timestamp is at or after it (ListOffsets by timestamp on
Apache Kafka, a binary search on the embedded broker: ``streams.kafka.ranges``). Records
are copied as stored (key and value bytes). Several topics are merged by that same time
(each partition keeps its order: a record never overtakes an earlier one of its
partition), at N x its pace (a recording produced in a burst replays at N x the market's
pace) or as fast as possible.

A new app id gets its own topics (every catalog topic, prefixed ``APP_ID.``); its worker
runs with ``TICKTIDE_APP_ID=APP_ID TICKTIDE_TOPIC_PREFIX=APP_ID.``, so it has its own
consumer group, tables and outputs and live state is untouched. The live response log
(``analysis.enrichment_cache``: Claude's answers and every published outcome) is copied
into the new instance's, so it publishes the same enrichments without calling Claude.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from domain.clock import to_micros
from streams.errors import DecodeError, InvalidInput
from streams.kafka.admin import create_topics, end_offsets, list_topics
from streams.kafka.codec import AvroCodec
from streams.kafka.json_form import parse_time
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import Raw, TimestampSearch, read_all, read_range
from streams.kafka.registry import registry_for
from streams.settings import Settings
from streams.tools.event_time_search import EventTimeSearch, TimeWindow

RESPONSE_LOG = "analysis.enrichment_cache"
TOPIC_SETS: dict[str, tuple[str, ...]] = {
    "strategy": ("analysis.indicators", "analysis.anomalies", "market.news"),
    "market": ("market.trades", "market.news", "user.commands"),
}
"""Named sets: ``strategy`` = what enrichment and the strategy read (they recompute
enrichments, signals and orders); ``market`` = every outside input (the whole pipeline)."""
Clock = Literal["event", "record"]
"""Which time --from/--to and --speed mean: the events' own (envelope event time) or the
records' (the Kafka timestamp: when they were produced)."""


@dataclass(frozen=True)
class Bound:
    """An offset, or a time in microseconds since the epoch."""

    offset: int | None = None
    time_us: int | None = None

    @classmethod
    def parse(cls, text: str, name: str) -> Bound:
        """'12345' is an offset; anything else must be a time (ISO 8601 or epoch seconds)."""
        if text.strip().isdigit():
            return cls(offset=int(text))
        try:
            moment: datetime = parse_time(text)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"--{name} must be an offset or a time (ISO 8601), got {text!r}: {exc}") from None
        return cls(time_us=to_micros(moment))


@dataclass
class Source:
    """One topic's range: per partition [start, end), the event time kept in it, and
    where it goes."""

    topic: str
    target: str
    starts: list[int]
    ends: list[int]
    window: TimeWindow = field(default_factory=TimeWindow)

    @property
    def total(self) -> int:
        """Records in the offset range (with an event-time window: those read, some skipped)."""
        return sum(max(0, e - s) for s, e in zip(self.starts, self.ends, strict=True))


@dataclass
class Plan:
    """What will be replayed, and into which new app (None: into an existing topic)."""

    sources: list[Source]
    new_app: str | None = None
    clock: Clock = "event"

    @property
    def total(self) -> int:
        """Records in the range, all topics."""
        return sum(s.total for s in self.sources)

    @property
    def target(self) -> str:
        """Where the records go, for people."""
        return ", ".join(s.target for s in self.sources)


@dataclass
class Progress:
    """How far a replay got: records copied and the next offset of each topic's partitions."""

    copied: int = 0
    skipped: int = 0  # read in the searched offsets, outside the event-time window
    seconds: float = 0.0
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records replayed per second."""
        return self.copied / self.seconds if self.seconds > 0 else 0.0


def topics_of(topics: list[str], named: str | None) -> list[str]:
    """The topics asked for: each --topic (commas split them) and the named set's."""
    wanted = [t.strip() for text in topics for t in text.split(",") if t.strip()]
    if named is not None:
        if named not in TOPIC_SETS:
            raise InvalidInput(f"--set {named!r} is not a named set; known: {', '.join(TOPIC_SETS)}")
        wanted += TOPIC_SETS[named]
    if not wanted:
        raise InvalidInput("name at least one --topic or a --set")
    return list(dict.fromkeys(wanted))


def _offsets(search: TimestampSearch, bound: Bound, partition: int, low: int, end: int) -> int:
    if bound.offset is not None:
        return max(low, min(bound.offset, end))
    assert bound.time_us is not None
    at_ms = -(-bound.time_us // 1000)  # a record of ms t is at or after time_us when t >= ceil(time_us / 1000)
    return search.first_at_or_after(partition, low, end, at_ms) if low < end else end


def _record_time_source(settings: Settings, topic: str, start: Bound, stop: Bound | None, target: str) -> Source:
    ends = list(end_offsets(settings, topic))
    search = TimestampSearch(settings, topic)
    try:
        starts = [_offsets(search, start, p, 0, end) for p, end in enumerate(ends)]
        stops = ends if stop is None else [_offsets(search, stop, p, s, end)
                                           for p, (s, end) in enumerate(zip(starts, ends, strict=True))]
    finally:
        search.close()
    return Source(topic, target, starts, stops)


def _event_time_source(settings: Settings, topic: str, start: Bound, stop: Bound | None, target: str) -> Source:
    """Offsets bound by offset as given; a time bound becomes the window the replay keeps
    and, per partition, the searched offsets that hold it."""
    ends = list(end_offsets(settings, topic))
    starts = [0 if start.offset is None else min(start.offset, end) for end in ends]
    stops = list(ends) if stop is None or stop.offset is None else [max(s, min(stop.offset, e))
                                                                  for s, e in zip(starts, ends, strict=True)]
    window = TimeWindow(start.time_us, None if stop is None else stop.time_us)
    if window.bounded:
        search = EventTimeSearch(settings, topic, AvroCodec(registry_for(settings),
                                                            settings.max_record_bytes))
        try:
            for partition, (first, end) in enumerate(zip(starts, stops, strict=True)):
                if first < end:
                    starts[partition], stops[partition] = search.hull(partition, first, end, window)
        finally:
            search.close()
    return Source(topic, target, starts, stops, window)


def _source(settings: Settings, topic: str, start: Bound, stop: Bound | None, target: str,
            clock: Clock) -> Source:
    if clock == "record":
        return _record_time_source(settings, topic, start, stop, target)
    return _event_time_source(settings, topic, start, stop, target)


def plan(settings: Settings, topics: list[str] | str, start: Bound, stop: Bound | None, into: str,
         clock: Clock = "event") -> Plan:
    """Resolve bounds to offsets (and an event-time window) and the target to topics
    (creating a new app's topics)."""
    names = [topics] if isinstance(topics, str) else topics
    existing = list_topics(settings)
    missing = [t for t in names if t not in existing]
    if missing:
        raise InvalidInput(f"no such topic: {', '.join(missing)}")
    if into in existing:
        if len(names) != 1:
            raise InvalidInput("several topics replay into an app id (--into APP), not into one topic")
        return Plan([_source(settings, names[0], start, stop, into, clock)], clock=clock)
    if not into or not all(c.isalnum() or c in "._-" for c in into):
        raise InvalidInput(f"--into {into!r} is neither an existing topic nor a valid app id")
    create_topics(isolated_settings(settings, into))
    return Plan([_source(settings, t, start, stop, f"{into}.{t.removeprefix(settings.topic_prefix)}", clock)
                 for t in names], new_app=into, clock=clock)


def isolated_settings(settings: Settings, app: str) -> Settings:
    """The settings of the isolated instance ``app`` (its app id and topic prefix)."""
    return settings.model_copy(update={"topic_prefix": f"{app}.", "app_id": app})


def copy_response_log(settings: Settings, app: str) -> int:
    """Copy this app's response log into ``app``'s (records it does not hold yet); how many."""
    target = f"{app}.{RESPONSE_LOG}"
    held = {(r.key, r.value) for r in read_all(settings, target)}
    copied = 0
    with EventProducer(settings) as producer:
        for raw in read_all(settings, settings.topic_prefix + RESPONSE_LOG):
            if (raw.key, raw.value) not in held:
                producer.send_raw(target, raw.key, raw.value)
                held.add((raw.key, raw.value))
                copied += 1
    return copied


def event_time_us(codec: AvroCodec, raw: Raw) -> int:
    """A record's event time (its envelope's); the record timestamp if it does not decode
    (it is copied all the same: the replayed instance dead-letters it as live did)."""
    try:
        return to_micros(codec.decode(raw.value).envelope.event_time)
    except DecodeError:
        return raw.timestamp_ms * 1000


def _keyed(records: Iterator[Raw], codec: AvroCodec, order: int, source: Source,
           clock: Clock) -> Iterator[tuple[int, int, int, int, Source, Raw]]:
    for raw in records:
        at = event_time_us(codec, raw) if clock == "event" else raw.timestamp_ms * 1000
        yield at, order, raw.partition, raw.offset, source, raw


def merged(settings: Settings, the_plan: Plan, codec: AvroCodec) -> Generator[tuple[int, Source, Raw], None, None]:
    """Every planned record as (time, source, record), merged by the plan's clock (event
    time by default); each partition's records stay in their order. Records outside a
    source's event-time window come too (the caller skips them: they count as read)."""
    runs, readers = [], []
    for order, source in enumerate(the_plan.sources):
        for partition, (start, end) in enumerate(zip(source.starts, source.ends, strict=True)):
            if start >= end:
                continue
            starts, ends = [0] * len(source.ends), [0] * len(source.ends)
            starts[partition], ends[partition] = start, end
            records = read_range(settings, source.topic, starts, ends)
            readers.append(records)
            runs.append(_keyed(records, codec, order, source, the_plan.clock))
    try:
        for at, _, _, _, source, raw in heapq.merge(*runs, key=lambda item: item[:4]):
            yield at, source, raw
    finally:
        for reader in readers:
            reader.close()


def replay(settings: Settings, the_plan: Plan, speed: float | None,
           on_record: Callable[[Progress], None] = lambda _: None,
           stop: threading.Event | None = None) -> Progress:
    """Copy the planned range (in an event-time window, only its records); ``speed`` None =
    as fast as possible, else N x the pace of the plan's clock (event time: the market's).
    Setting ``stop`` (or a KeyboardInterrupt) stops cleanly: the returned progress says
    where it stopped. Waits for the pace are cut short by ``stop``."""
    stop = stop or threading.Event()
    progress = Progress(next_offsets={(s.topic, p): o for s in the_plan.sources for p, o in enumerate(s.starts)})
    started = time.monotonic()
    first_us: int | None = None
    producer = EventProducer(settings)
    records = merged(settings, the_plan, producer.codec)
    try:
        for at, source, raw in records:
            if not source.window.holds(at) and the_plan.clock == "event":
                progress.skipped += 1
                progress.next_offsets[(source.topic, raw.partition)] = raw.offset + 1
                continue
            if speed is not None:
                first_us = at if first_us is None else first_us
                ahead = (at - first_us) / 1e6 / speed - (time.monotonic() - started)
                if ahead > 0:
                    stop.wait(ahead)
            if stop.is_set():
                break
            producer.send_raw(source.target, raw.key, raw.value)
            progress.copied += 1
            progress.next_offsets[(source.topic, raw.partition)] = raw.offset + 1
            on_record(progress)
    except KeyboardInterrupt:
        pass
    finally:
        records.close()
        producer.flush()
        progress.seconds = time.monotonic() - started
    return progress
