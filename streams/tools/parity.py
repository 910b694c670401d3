"""`ticktide parity`: compare an isolated instance (a replay) with the live app over the
same range of event time, kind by kind (``domain.parity``), reading each topic up to the
end offsets seen at the start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from domain.parity import KINDS, KindReport, compare, in_range
from schemas.records import Event
from streams.errors import DecodeError, InvalidInput
from streams.kafka.admin import list_topics
from streams.kafka.codec import AvroCodec
from streams.kafka.json_form import event_to_json
from streams.kafka.ranges import read_all
from streams.kafka.registry import registry_for
from streams.settings import Settings


@dataclass(frozen=True)
class Window:
    """The event-time range compared, in microseconds since the epoch (None: unbounded)."""

    start_us: int | None = None
    stop_us: int | None = None


def kinds_of(only: str | None) -> list[str]:
    """The kinds asked for (all by default); InvalidInput naming the known ones."""
    if only is None:
        return list(KINDS)
    wanted = [k.strip() for k in only.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in KINDS]
    if unknown or not wanted:
        raise InvalidInput(f"--only takes kinds from: {', '.join(KINDS)} (got {only!r})")
    return wanted


def _events(settings: Settings, codec: AvroCodec, topic: str, types: tuple[type[Event], ...]) -> Iterator[Event]:
    for raw in read_all(settings, topic):
        try:
            event = codec.decode(raw.value)
        except DecodeError:
            continue  # what no agent could read was never part of either side's history
        if isinstance(event, types):
            yield event


def parity(settings: Settings, app: str, window: Window, kinds: list[str]) -> list[KindReport]:
    """Each kind compared between the live app (this settings' prefix) and ``app``."""
    prefix = f"{app}."
    if not any(t.startswith(prefix) for t in list_topics(settings)):
        raise InvalidInput(f"no isolated instance {app!r}: no topic starts with {prefix!r}")
    codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
    reports = []
    for kind in kinds:
        live: list[Event] = []
        other: list[Event] = []
        for topic, types in KINDS[kind]:
            live += in_range(_events(settings, codec, settings.topic_prefix + topic, types),
                             window.start_us, window.stop_us)
            other += in_range(_events(settings, codec, prefix + topic, types), window.start_us, window.stop_us)
        reports.append(compare(kind, live, other))
    return reports


def _shown(event: Event | None) -> str:
    return "(none)" if event is None else json.dumps(event_to_json(event), sort_keys=True)


def render(reports: list[KindReport], app: str) -> list[str]:
    """The report's lines: one per kind, and both sides' events at a difference."""
    lines = []
    for report in reports:
        counts = f"live {report.live_count}, {app} {report.other_count}"
        if report.difference is None:
            lines.append(f"{report.kind}: equal ({counts} events)")
            continue
        lines.append(f"{report.kind}: DIFFERENT at event #{report.difference.index} in event-time order ({counts})")
        lines.append(f"  live: {_shown(report.difference.live)}")
        lines.append(f"  {app}: {_shown(report.difference.other)}")
    return lines
