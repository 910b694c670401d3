"""Dead letters for people: list, show and replay what landed on system.deadletter.

A dead letter is named by where it sits on system.deadletter: ``PARTITION:OFFSET``.
Replaying re-sends its original key and value bytes to its source topic (after a fix),
so the agent that failed on it tries again. Reads stop at the end offsets seen at start.

Letters are untrusted (anyone who can write the topic can forge one): a letter is re-sent
only to a catalog topic of this app, with a record of a type that topic carries
(domain/rules/deadletters.py). Each re-send is marked on system.deadletter_replays (key: the
letter's id), so a second replay of the same letter, or of a trade that may already be in
the candles, needs ``force``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from domain.rules.deadletters import Verdict, catalog_name, judge
from schemas.records import DeadLetter, utc_now
from streams.errors import DecodeError, InvalidInput
from streams.kafka.catalog import CATALOG
from streams.kafka.catalog import topic as catalog_topic
from streams.kafka.codec import AvroCodec
from streams.kafka.json_form import event_to_json
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import Raw, read_all
from streams.kafka.registry import registry_for
from streams.resilience.deadletter import DEADLETTER_TOPIC
from streams.settings import Settings

_ID = re.compile(r"^([0-9]{1,9}):([0-9]{1,19})$")
REPLAYS_TOPIC = "system.deadletter_replays"
PRODUCER = "cli.dlq_replay"


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


def _letter_codec(settings: Settings) -> AvroCodec:
    return AvroCodec(registry_for(settings), settings.max_record_bytes * 2 + 65536)


def _letters_on(settings: Settings, topic: str) -> Iterator[tuple[Raw, DeadLetter]]:
    codec = _letter_codec(settings)
    for raw in read_all(settings, settings.topic_prefix + topic):
        try:
            event = codec.decode(raw.value)
        except DecodeError:
            continue
        if isinstance(event, DeadLetter):
            yield raw, event


def read_letters(settings: Settings) -> Iterator[Letter]:
    """Every dead letter on the topic when the read starts, oldest first per partition."""
    return (Letter(raw.partition, raw.offset, letter) for raw, letter in _letters_on(settings, DEADLETTER_TOPIC))


def replayed(settings: Settings) -> dict[str, tuple[str, str]]:
    """Letters re-sent before: id -> (the letter's event id, when it was re-sent)."""
    marks: dict[str, tuple[str, str]] = {}
    for raw, mark in _letters_on(settings, REPLAYS_TOPIC):
        key = raw.key.decode(errors="replace") if raw.key else ""
        marks[key] = (mark.envelope.causation_id or "", event_to_json(mark)["envelope"]["event_time"])
    return marks


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


@dataclass
class ReplayPlan:
    """Which letters go back to their source topic, and which are refused (and why)."""

    sendable: list[Letter] = field(default_factory=list)
    refused: list[tuple[Letter, Verdict]] = field(default_factory=list)


def _wrong_type(codec: AvroCodec, letter: DeadLetter, name: str) -> str | None:
    """Why the original value does not belong on catalog topic ``name`` (None if it may)."""
    try:
        record = codec.decode(letter.original_value)
    except DecodeError:
        return None  # undecodable bytes are dead-lettered again, harmlessly (e.g. after a decoder fix)
    spec = catalog_topic(name)
    if isinstance(record, spec.value_types):
        return None
    return f"it holds a {type(record).__name__}, which {name} does not carry"


def plan_replay(settings: Settings, letters: Iterable[Letter], *, force: bool = False) -> ReplayPlan:
    """Judge each letter: where it would go, whether it was re-sent before, whether it may
    already be folded (domain.rules.deadletters)."""
    names = [spec.name for spec in CATALOG]
    before = replayed(settings)
    codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
    plan = ReplayPlan()
    for x in letters:
        mark = before.get(x.id)
        verdict = judge(source_topic=x.letter.source_topic, agent=x.letter.agent, reason=x.letter.reason,
                        has_value=x.letter.original_value is not None, prefix=settings.topic_prefix,
                        catalog=names, force=force,
                        replayed_at=mark[1] if mark and mark[0] == x.letter.envelope.event_id else None)
        name = catalog_name(x.letter.source_topic, settings.topic_prefix, names)
        wrong = _wrong_type(codec, x.letter, name) if verdict.allowed and name else None
        if wrong:
            verdict = Verdict(False, wrong)
        if verdict.allowed:
            plan.sendable.append(x)
        else:
            plan.refused.append((x, verdict))
    return plan


def replay(settings: Settings, letters: Iterable[Letter]) -> int:
    """Re-send each letter's original bytes to its source topic, then mark it re-sent on
    system.deadletter_replays; how many were sent. Judge them first (``plan_replay``)."""
    chosen = [x for x in letters if x.letter.original_value is not None]
    with EventProducer(settings, _letter_codec(settings)) as producer:
        for x in chosen:
            producer.send_raw(x.letter.source_topic, x.letter.original_key, x.letter.original_value)
        producer.flush()  # the marks only once the broker has every re-sent record
        now = utc_now()
        for x in chosen:
            envelope = DeadLetter.envelope_for(event_time=now, producer=PRODUCER,
                                               causation_id=x.letter.envelope.event_id)
            mark = replace(x.letter, envelope=envelope, original_value=None)
            producer.send_raw(settings.topic_prefix + REPLAYS_TOPIC, x.id.encode(), producer.codec.encode(mark))
    return len(chosen)
