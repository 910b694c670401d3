"""The record rules (domain/rules/validity.py, domain/rules/fields.py): what a hostile or broken producer could send is
refused with the field named, bounded work for any input size, and the hot path's tick
check agrees with the full Trade rule."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiokafka.partitioner import murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rules.fields import MAX_AMOUNT_UNITS, MIN_TIME_US, TimeBounds, show
from domain.rules.validity import _plainly_valid, _rule_violation, record_time_violation, tick_violation, violations
from schemas.records import Event, Trade
from streams.errors import InvalidValue
from streams.hotpath.trade_decoder import TickDecoder
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import make_registry
from streams.validation import checked
from tests.factories import (
    make_news,
    make_trade,
    make_user_command,
    sample_events,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
BOUNDS = TimeBounds(int(NOW.timestamp() * 1_000_000), 300_000_000)


def fields(event: Event) -> list[str]:
    return [v.field for v in violations(event, BOUNDS)]


def test_every_sample_event_is_valid() -> None:
    for event in sample_events():
        assert violations(event, BOUNDS) == [], type(event).__name__


@pytest.mark.parametrize(("change", "field"), [
    ({"symbol": "#partition/0"}, "symbol"),
    ({"symbol": "#x"}, "symbol"),
    ({"symbol": ""}, "symbol"),
    ({"symbol": "BTC USDT"}, "symbol"),
    ({"symbol": "B" * 33}, "symbol"),
    ({"symbol": "x" * 1_000_000}, "symbol"),
    ({"venue": "v" * 1_000_000}, "venue"),
    ({"price": Decimal(0)}, "price"),
    ({"price": Decimal("-1")}, "price"),
    ({"price": Decimal("NaN")}, "price"),
    ({"price": Decimal("1E+1000000")}, "price"),
    ({"size": Decimal(0)}, "size"),
    ({"trade_id": -1}, "trade_id"),
    ({"trade_time": datetime(1970, 1, 1, tzinfo=UTC)}, "trade_time"),
    ({"trade_time": datetime(2008, 12, 31, tzinfo=UTC)}, "trade_time"),
    ({"trade_time": datetime(2999, 1, 1, tzinfo=UTC)}, "trade_time"),
    ({"trade_time": NOW + timedelta(seconds=301)}, "trade_time"),
])
def test_a_broken_trade_names_the_field(change: dict[str, object], field: str) -> None:
    trade = dataclasses.replace(make_trade(), **change)
    assert field in fields(trade)


def test_a_trade_within_the_allowed_clock_skew_is_valid() -> None:
    assert fields(make_trade(trade_time=NOW + timedelta(seconds=299))) == []
    assert fields(make_trade(trade_time=datetime(2009, 1, 1, tzinfo=UTC))) == []


def test_showing_a_hostile_value_is_bounded() -> None:
    started = time.perf_counter()
    for value in (10**100_000, "x" * 10_000_000, Decimal("1E+100000000"), b"\x00" * 10_000_000):
        assert len(show(value)) <= 60
    assert time.perf_counter() - started < 1.0  # microseconds in practice; a bound, not a benchmark


def test_hostile_news_and_commands_are_refused() -> None:
    assert "headline" in fields(make_news(headline="h" * 1001))
    assert "url" in fields(make_news(url="javascript:alert(1)"))
    assert "symbols" in fields(make_news(symbols=["BTCUSDT", "#partition/0"]))
    assert "symbols" in fields(make_news(symbols=["S"] * 51))
    assert "arguments" in fields(make_user_command(arguments={"value": "9" * 1000}))
    assert "arguments" in fields(make_user_command(arguments={f"k{i}": "1" for i in range(17)}))
    assert "command" in fields(make_user_command(command="Drop Table"))


def test_checked_raises_invalid_value_with_the_field() -> None:
    with pytest.raises(InvalidValue) as raised:
        checked(make_trade(size=Decimal(0)), 300)
    assert raised.value.field == "size" and "not positive" in str(raised.value)


def test_a_record_timestamp_far_in_the_future_is_refused() -> None:
    assert record_time_violation(250_000_000_000_000, BOUNDS) is not None  # year ~9900
    assert record_time_violation(BOUNDS.now_us // 1000, BOUNDS) is None


UNITS = 10**18


@settings(max_examples=300, deadline=None)
@given(symbol=st.one_of(st.sampled_from(["BTCUSDT", "ETH-PERP", "#partition/1", "", "a b"]), st.text(max_size=40)),
       price=st.integers(-UNITS, MAX_AMOUNT_UNITS + 2), size=st.integers(-UNITS, 10 * UNITS),
       trade_id=st.integers(-5, 2**63 + 5),
       time_us=st.integers(0, BOUNDS.latest_us + 10**9))
def test_the_hot_path_check_agrees_with_the_trade_rule(symbol: str, price: int, size: int, trade_id: int,
                                                       time_us: int) -> None:
    trade = dataclasses.replace(
        make_trade(), symbol=symbol, trade_id=trade_id, price=Decimal(price).scaleb(-18),
        size=Decimal(size).scaleb(-18),
        trade_time=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us))
    full = {v.field for v in violations(trade, BOUNDS)} & {"symbol", "trade_id", "price", "size", "trade_time"}
    tick = tick_violation(symbol, trade_id, time_us, price, size, BOUNDS)
    assert (tick is None) == (not full)
    if tick is not None:
        assert tick.field in full


def test_a_valid_trade_has_no_violation_on_either_path() -> None:
    trade: Trade = make_trade()
    units = int(trade.price.scaleb(18)), int(trade.size.scaleb(18))
    time_us = int(trade.trade_time.timestamp() * 1_000_000)
    assert tick_violation(trade.symbol, trade.trade_id, time_us, *units, BOUNDS) is None


@pytest.mark.parametrize(("change", "field"), [
    ({"venue": ""}, "venue"),
    ({"venue": "v" * 600_000}, "venue"),
    ({"first_trade_id": 9, "last_trade_id": 4}, "first_trade_id"),
    ({"symbol": "#partition/0"}, "symbol"),
    ({"size": Decimal(0)}, "size"),
    ({"trade_time": datetime(2999, 1, 1, tzinfo=UTC)}, "trade_time"),
])
def test_the_hot_path_refuses_what_the_trade_rule_refuses(change: dict[str, object], field: str) -> None:
    codec = AvroCodec(make_registry(None), max_record_bytes=2 * 1024 * 1024)
    decoder = TickDecoder(codec, partitions=4)
    trade = dataclasses.replace(make_trade(), **change)
    assert field in fields(trade)
    with pytest.raises(InvalidValue) as raised:
        decoder.decode_checked(codec.encode(trade), BOUNDS.now_us // 1000, _partition(trade.symbol), BOUNDS)
    assert raised.value.field == field


def test_the_hot_path_refuses_a_future_envelope_a_bad_record_timestamp_and_a_foreign_partition() -> None:
    codec = AvroCodec(make_registry(None))
    decoder = TickDecoder(codec, partitions=4)
    trade = make_trade()
    partition, now_ms = _partition(trade.symbol), BOUNDS.now_us // 1000
    future = dataclasses.replace(trade, envelope=dataclasses.replace(
        trade.envelope, event_time=datetime(2999, 1, 1, tzinfo=UTC)))
    cases = [(codec.encode(future), now_ms, partition, "envelope.event_time"),
             (codec.encode(trade), 250_000_000_000_000, partition, "timestamp"),
             (codec.encode(trade), now_ms, (partition + 1) % 4, "symbol")]
    for data, timestamp_ms, where, field in cases:
        with pytest.raises(InvalidValue) as raised:
            decoder.decode_checked(data, timestamp_ms, where, BOUNDS)
        assert raised.value.field == field
    assert decoder.decode_checked(codec.encode(trade), now_ms, partition, BOUNDS).symbol == trade.symbol


def _partition(symbol: str) -> int:
    return int((murmur2(symbol.encode()) & 0x7FFFFFFF) % 4)


_TEXT = st.one_of(st.sampled_from(["", " ", "\t", "binance", "Trade", "a" * 32, "a" * 33, "a" * 64, "a" * 65,
                                   "b" * 128, "b" * 129, "c" * 256, "c" * 257, "Bad Type"]), st.text(max_size=300))
_MUTATIONS = st.one_of(
    st.tuples(st.sampled_from(["venue", "trade_type"]), st.one_of(st.none(), _TEXT)),
    st.tuples(st.sampled_from(["first_trade_id", "last_trade_id"]),
              st.one_of(st.none(), st.integers(-3, 3), st.integers(2**63 - 3, 2**63 + 3))),
    st.tuples(st.sampled_from(["envelope.event_id", "envelope.producer", "envelope.event_type",
                               "envelope.correlation_id", "envelope.causation_id"]), st.one_of(st.none(), _TEXT)),
    st.tuples(st.sampled_from(["envelope.schema_version", "envelope.retry_count"]), st.integers(-2, 1002)),
    st.tuples(st.sampled_from(["envelope.event_time", "envelope.ingest_time"]),
              st.one_of(st.integers(-(2**62), 2**62), st.sampled_from([MIN_TIME_US - 1, MIN_TIME_US,
                                                                       BOUNDS.latest_us, BOUNDS.latest_us + 1]))),
)


@settings(max_examples=1000, deadline=None)
@given(mutations=st.lists(_MUTATIONS, min_size=1, max_size=2))
def test_the_quick_path_accepts_only_what_the_rules_accept(mutations: list[tuple[str, object]]) -> None:
    envelope = {"event_id": "e-1", "producer": "feed", "event_type": "Trade", "schema_version": 2,
                "retry_count": 0, "correlation_id": None, "causation_id": None,
                "event_time": BOUNDS.now_us, "ingest_time": BOUNDS.now_us, "priority": "NORMAL"}
    record: dict[str, object] = {"venue": "binance", "trade_type": None, "first_trade_id": None,
                                 "last_trade_id": None, "envelope": envelope}
    for field, value in mutations:
        where, name = (envelope, field.removeprefix("envelope.")) if field.startswith("envelope.") else (record, field)
        where[name] = value
    if _plainly_valid(record, BOUNDS):
        assert _rule_violation(record, BOUNDS) is None, mutations
