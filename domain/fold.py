"""The one shape of every stateful fold in ticktide.

A fold is ``evolve(state, item) -> (state, outputs)``: from the typed state of one key and
one input it gives the next state and the events the step emits. It does no I/O and reads
no clock (time comes in with the input), so the live agent, ``ticktide rebuild`` and the
tests drive the same function and get the same result. For speed on the hot path the state
is owned by the fold, which may return it updated in place.

What has been applied is recorded one way: the state's ``applied`` position, the source
partition and offset of the last input folded in (and its topic, for a fold fed by more
than one topic). ``step`` skips an input the state
already holds (a re-delivery after a crash or a takeover), so a fold applies each input
once whatever the delivery does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class Position:
    """Where the last input applied came from (partition -1: nothing applied yet)."""

    partition: int = -1
    offset: int = -1
    topic: str = ""
    """Only for a fold fed by several topics ("" otherwise)."""

    def covers(self, partition: int, offset: int, topic: str = "") -> bool:
        """True if the input at ``partition``/``offset`` (of ``topic``) is already applied."""
        return partition == self.partition and offset <= self.offset and topic == self.topic


NOTHING_APPLIED = Position()


class Folded(Protocol):
    """A fold's typed state: it knows what it has applied."""

    applied: Position


S = TypeVar("S", bound=Folded)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741
Evolve = Callable[[S, I], tuple[S, Sequence[O]]]
"""A pure step of a fold."""


def step(evolve: Evolve[S, I, O], state: S, item: I, partition: int, offset: int,
         topic: str = "") -> tuple[S, Sequence[O]]:
    """Apply ``item`` (read at ``partition``/``offset`` of ``topic``) unless ``state`` holds
    it already; the next state (with ``applied`` moved on) and what the step emitted."""
    if state.applied.covers(partition, offset, topic):
        return state, ()
    state, outputs = evolve(state, item)
    state.applied = Position(partition, offset, topic)
    return state, outputs
