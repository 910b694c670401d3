"""The JSON view of events: what `consume` prints and `produce --format jsonl` reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas.records import RECORD_TYPES
from streams.errors import InvalidInput
from streams.kafka.json_form import event_to_json, format_decimal, parse_time, record_from_json
from tests.factories import make_trade, sample_events


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_json_text(event: object) -> None:
    text = json.dumps(event_to_json(event))  # type: ignore[arg-type]
    back = record_from_json(type(event), json.loads(text))
    assert back == event
    assert type(event) in RECORD_TYPES.values()


def test_decimals_are_exact_strings_without_exponents() -> None:
    assert format_decimal(Decimal("64000.100000000000000000")) == "64000.1"
    assert format_decimal(Decimal("1E+2")) == "100"
    assert format_decimal(Decimal("0.000000000000000001")) == "0.000000000000000001"
    assert event_to_json(make_trade(price=Decimal("0.1")))["price"] == "0.1"


def test_times_accept_iso_and_epoch_in_any_unit() -> None:
    expected = datetime(2024, 7, 19, 0, 0, 0, 123000, tzinfo=UTC)
    assert parse_time("2024-07-19T00:00:00.123Z") == expected
    assert parse_time(1721347200123) == expected
    assert parse_time(1721347200123000) == expected
    assert parse_time("1721347200123") == expected


def test_bad_field_names_the_field() -> None:
    data = event_to_json(make_trade())
    with pytest.raises(InvalidInput, match="price"):
        record_from_json(type(make_trade()), {**data, "price": "abc"})
    with pytest.raises(InvalidInput, match="missing field: symbol"):
        record_from_json(type(make_trade()), {k: v for k, v in data.items() if k != "symbol"})
    with pytest.raises(InvalidInput, match="unknown field"):
        record_from_json(type(make_trade()), {**data, "extra": 1})
