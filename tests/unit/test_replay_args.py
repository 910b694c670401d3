"""`ticktide replay` bounds and speed: offsets, times, and clear errors for anything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.cli.history.replay import _speed
from streams.errors import InvalidInput
from streams.tools.replay import Bound


def test_digits_are_an_offset_and_iso_text_is_a_time() -> None:
    assert Bound.parse("12345", "from") == Bound(offset=12345)
    moment = datetime(2024, 7, 19, 12, 30, tzinfo=UTC)
    assert Bound.parse("2024-07-19T12:30:00Z", "to") == Bound(time_us=int(moment.timestamp()) * 1_000_000)
    assert Bound.parse("2024-07-19T14:30:00+02:00", "to") == Bound(time_us=int(moment.timestamp()) * 1_000_000)


def test_a_bad_bound_names_the_option() -> None:
    with pytest.raises(InvalidInput, match="--from must be an offset or a time"):
        Bound.parse("yesterday", "from")


def test_speed_is_max_or_a_positive_factor() -> None:
    assert _speed("max") is None
    assert _speed("10") == 10.0
    for bad in ("0", "-2", "fast"):
        with pytest.raises(InvalidInput, match="--speed"):
            _speed(bad)
