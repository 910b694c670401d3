"""Dead letters for people: list, show and replay what landed on system.deadletter.

A dead letter is named by where it sits on system.deadletter: ``PARTITION:OFFSET``.
Replaying re-sends its original key and value bytes to its source topic (after a fix),
so the agent that failed on it tries again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from schemas.records import DeadLetter
from streams.codec import AvroCodec
from streams.consumer import Consumed, read_topic
from streams.deadletter import DEADLETTER_TOPIC
from streams.errors import InvalidInput
from streams.jsonio import event_to_json
from streams.producer import EventProducer
from streams.registry import make_registry
from streams.settings import Settings

_ID = re.compile(r"^(\d+):(\d+)$")


@dataclass(frozen=True)
class Letter:
    """A dead letter and where it sits on system.deadletter."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def id(self) -> str:
        """``PARTITION:OFFSET`` on system.deadletter."""
        return f"{self.partition}:{self.offset}"

    def summary(self) -> dict[str, Any]:
        """One line's worth: id, time, source, agent, reason, error."""
        d = self.letter
        return {"id": self.id, "time": event_to_json(d)["envelope"]["event_time"],
                "source": f"{d.source_topic}[{d.source_partition}]@{d.source_offset}",
                "agent": d.agent, "reason": d.reason, "attempt": d.attempt,
                "error": f"{d.error_type}: {d.error_message}"}


def parse_id(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` as numbers (InvalidInput otherwise)."""
    match = _ID.match(text.strip())
    if match is None:
        raise InvalidInput(f"a dead letter id is PARTITION:OFFSET (as `ticktide dlq list` shows), got {text!r}")
    return int(match[1]), int(match[2])


def read_letters(settings: Settings, idle_timeout: float = 3.0) -> Iterator[Letter]:
    """Every dead letter on the topic, oldest first per partition."""
    codec = AvroCodec(make_registry(settings.schema_registry_url), settings.max_record_bytes * 2 + 65536)
    for record in read_topic(settings, DEADLETTER_TOPIC, idle_timeout=idle_timeout, codec=codec):
        if isinstance(record, Consumed) and isinstance(record.event, DeadLetter):
            yield Letter(record.partition, record.offset, record.event)


def select(letters: Iterable[Letter], *, ids: Iterable[str] = (), agent: str | None = None,
           reason: str | None = None, source_topic: str | None = None) -> list[Letter]:
    """The letters matching every filter given (ids: exactly those, all must exist)."""
    wanted = {parse_id(i) for i in ids}
    chosen = [x for x in letters
              if (not wanted or (x.partition, x.offset) in wanted)
              and (agent is None or x.letter.agent == agent)
              and (reason is None or x.letter.reason == reason)
              and (source_topic is None or x.letter.source_topic == source_topic)]
    missing = wanted - {(x.partition, x.offset) for x in chosen}
    if missing:
        shown = ", ".join(f"{p}:{o}" for p, o in sorted(missing))
        raise InvalidInput(f"no dead letter {shown} on {DEADLETTER_TOPIC} (matching the filters)")
    return chosen


def replay(settings: Settings, letters: Iterable[Letter]) -> int:
    """Re-send each letter's original bytes to its source topic; how many were sent."""
    sendable = [x for x in letters if x.letter.original_value is not None]
    with EventProducer(settings) as producer:
        for x in sendable:
            producer.send_raw(x.letter.source_topic, x.letter.original_key, x.letter.original_value)
    return len(sendable)
