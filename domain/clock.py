"""Event time as integers: aware UTC datetimes <-> microseconds since the Unix epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the Unix epoch (exact)."""
    return (moment - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """Microseconds since the Unix epoch as an aware UTC datetime (exact)."""
    return EPOCH + timedelta(microseconds=micros)
