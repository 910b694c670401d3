"""The record rules of ``domain.rules.validity`` applied at the edges, with the wall clock.

Producers call ``checked`` before they send; agents call it right after decoding, inside
their dead-letter guard, so a violation is dead-lettered with reason ``invalid_value``
before it can touch a table, a watermark or a window.
"""

from __future__ import annotations

import time
from typing import TypeVar

from domain.rules.fields import TimeBounds
from domain.rules.validity import first_violation
from schemas.records import Event
from streams.errors import InvalidValue

E = TypeVar("E", bound=Event)


def bounds_now(max_future_skew_s: float) -> TimeBounds:
    """Event-time bounds as of now (2009 .. now + the allowed skew)."""
    return TimeBounds(time.time_ns() // 1000, int(max_future_skew_s * 1_000_000))


def checked(event: E, max_future_skew_s: float, *, bound_times: bool = True) -> E:
    """``event`` if it keeps its type's rules, else InvalidValue naming the first bad field.
    ``bound_times=False`` for records whose times are not market times (internal ones)."""
    violation = first_violation(event, bounds_now(max_future_skew_s) if bound_times else None)
    if violation is not None:
        raise InvalidValue(violation.field, violation.problem)
    return event
