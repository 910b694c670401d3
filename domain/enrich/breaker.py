"""A circuit breaker as a pure state machine; the caller passes the clock in.

CLOSED lets every call through and counts consecutive failures; ``failure_threshold`` of
them in a row open it. OPEN refuses calls until ``cooldown_s`` has passed, then lets one
probe through (HALF_OPEN). The probe's success closes it; its failure opens it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Transition:
    """One change of state, for the log and the metrics."""

    at: float
    before: BreakerState
    after: BreakerState


@dataclass
class CircuitBreaker:
    """Closed / open / half-open, opened by consecutive failures, probed after a cool-down."""

    failure_threshold: int = 5
    cooldown_s: float = 30.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    transitions: list[Transition] = field(default_factory=list)

    def _move(self, now: float, after: BreakerState) -> None:
        if after is not self.state:
            self.transitions.append(Transition(now, self.state, after))
            self.state = after

    def allow(self, now: float) -> bool:
        """May a call go out now? While half-open only one probe at a time."""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.cooldown_s:
            self._move(now, BreakerState.HALF_OPEN)
            self.probing = False
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def cancel(self) -> None:
        """A call that was allowed did not go out (e.g. over budget): free the probe."""
        self.probing = False

    def drain(self) -> list[Transition]:
        """The transitions since the last drain (for the log and the metrics)."""
        changes, self.transitions = self.transitions, []
        return changes

    def success(self, now: float) -> None:
        """A call succeeded: close (a probe's success ends the outage)."""
        self.failures = 0
        self.probing = False
        self._move(now, BreakerState.CLOSED)

    def failure(self, now: float) -> None:
        """A call failed: open after the threshold, or at once if it was the probe."""
        self.failures += 1
        self.probing = False
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.opened_at = now
            self._move(now, BreakerState.OPEN)
