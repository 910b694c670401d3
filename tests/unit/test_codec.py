"""AvroCodec: exact round trips, the Confluent wire format, old writers, clear errors."""

from __future__ import annotations

import dataclasses
import io
import struct
from datetime import timedelta
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from schemas.files import all_versions, latest
from schemas.records import RECORD_TYPES, Candle, Event, Trade
from streams.errors import (
    BadMagicByte,
    CorruptRecord,
    DecodeError,
    EncodeError,
    RecordTooLarge,
    TruncatedRecord,
    UnknownSchemaId,
)
from streams.kafka.codec import AvroCodec, to_avro
from streams.kafka.registry import EmbeddedRegistry, embedded_schema_id
from tests.factories import make_candle, make_envelope, make_trade, sample_events

SAMPLES = sample_events()
IDS = [type(event).__name__ for event in SAMPLES]


@pytest.fixture(scope="module")
def registry() -> EmbeddedRegistry:
    return EmbeddedRegistry()


@pytest.fixture(scope="module")
def codec(registry: EmbeddedRegistry) -> AvroCodec:
    return AvroCodec(registry)


def _header(schema_id: int) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id)


# --- round trips and the wire format --------------------------------------------------


def test_samples_cover_every_record_type() -> None:
    assert sorted(type(e).AVRO_NAME for e in SAMPLES) == sorted(RECORD_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=IDS)
def test_every_event_round_trips_exactly(codec: AvroCodec, event: Event) -> None:
    decoded = codec.decode(codec.encode(event))
    assert type(decoded) is type(event)
    assert decoded == event
    for name in ("event_time", "ingest_time"):  # aware UTC, microseconds kept
        value = getattr(decoded.envelope, name)
        assert value.utcoffset() == timedelta(0)
        assert value.microsecond == getattr(event.envelope, name).microsecond


def test_decimals_keep_their_value_and_enums_their_type(codec: AvroCodec) -> None:
    price, size = Decimal("64012.123456789012345678"), Decimal("-0.000000000000000001")
    trade = make_trade(price=price, size=size)
    decoded = codec.decode(codec.encode(trade))
    assert isinstance(decoded, Trade)
    assert (decoded.price, decoded.size) == (price, size)
    assert type(decoded.taker_side) is type(trade.taker_side)
    assert type(decoded.envelope.priority) is type(trade.envelope.priority)


@pytest.mark.parametrize("event", SAMPLES, ids=IDS)
def test_header_is_magic_byte_and_registry_id(
    codec: AvroCodec, registry: EmbeddedRegistry, event: Event
) -> None:
    data = codec.encode(event)
    version = latest(type(event).AVRO_NAME)
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == registry.register(version)
    assert int.from_bytes(data[1:5], "big") == embedded_schema_id(version.schema)
    assert codec.schema_id(type(event)) == registry.register(version)


def test_trade_written_with_v1_decodes_into_todays_trade(codec: AvroCodec) -> None:
    v1 = all_versions()["ticktide.market.Trade"][0]
    assert v1.version == 1
    today = make_trade(envelope=make_envelope(Trade, schema_version=1))
    old = to_avro(today)
    for new_field in ("trade_type", "first_trade_id", "last_trade_id"):
        del old[new_field]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(v1.schema), old)

    decoded = codec.decode(_header(embedded_schema_id(v1.schema)) + body.getvalue())

    assert isinstance(decoded, Trade)
    assert (decoded.trade_type, decoded.first_trade_id, decoded.last_trade_id) == (None,) * 3
    expected = dataclasses.replace(today, trade_type=None, first_trade_id=None, last_trade_id=None)
    assert decoded == expected
    assert decoded.envelope.schema_version == 1


def test_candle_written_with_v1_decodes_with_the_v2_kline_fields_null(codec: AvroCodec) -> None:
    v1 = all_versions()["ticktide.analysis.Candle"][0]
    today = make_candle(envelope=make_envelope(Candle, schema_version=1))
    old = to_avro(today)
    del old["taker_buy_quote_volume"], old["close_time"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(v1.schema), old)

    decoded = codec.decode(_header(embedded_schema_id(v1.schema)) + body.getvalue())

    assert decoded == dataclasses.replace(today, taker_buy_quote_volume=None, close_time=None)
    assert codec.decode(codec.encode(today)) == today  # v2 keeps them


# --- decode errors --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trade_bytes(codec: AvroCodec) -> bytes:
    return codec.encode(make_trade())


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00"], ids=["empty", "3-bytes"])
def test_shorter_than_header_is_truncated(codec: AvroCodec, data: bytes) -> None:
    with pytest.raises(TruncatedRecord, match="shorter than the 5-byte header"):
        codec.decode(data)


@pytest.mark.parametrize("magic", [1, 0x7F, 0x80, 0xFF])
def test_wrong_magic_byte(codec: AvroCodec, trade_bytes: bytes, magic: int) -> None:
    with pytest.raises(BadMagicByte, match=f"first byte is {magic}"):
        codec.decode(bytes([magic]) + trade_bytes[1:])


def test_unknown_schema_id(
    codec: AvroCodec, registry: EmbeddedRegistry, trade_bytes: bytes
) -> None:
    unknown = 0x7FFF_FFFE
    with pytest.raises(UnknownSchemaId):
        registry.lookup(unknown)
    with pytest.raises(UnknownSchemaId, match=str(unknown)):
        codec.decode(_header(unknown) + trade_bytes[5:])


def test_truncated_body_is_truncated(codec: AvroCodec, trade_bytes: bytes) -> None:
    with pytest.raises(TruncatedRecord):
        codec.decode(trade_bytes[:40])  # cut inside the envelope's strings


def test_every_cut_of_every_record_is_reported_truncated(codec: AvroCodec) -> None:
    """A record cut anywhere after its header is a TruncatedRecord, never 'corrupt'."""
    wrong: list[str] = []
    for event in SAMPLES:
        data = codec.encode(event)
        for cut in range(5, len(data)):
            try:
                codec.decode(data[:cut])
                wrong.append(f"{type(event).__name__}[:{cut}] decoded")
            except TruncatedRecord:
                pass
            except DecodeError as exc:
                wrong.append(f"{type(event).__name__}[:{cut}] -> {type(exc).__name__}: {exc}")
    assert not wrong, f"{len(wrong)} cuts misreported, e.g. {wrong[:3]}"


def test_trailing_garbage_is_corrupt(codec: AvroCodec, trade_bytes: bytes) -> None:
    with pytest.raises(CorruptRecord, match="1 trailing bytes"):
        codec.decode(trade_bytes + b"\x00")


def test_decode_over_max_record_bytes(registry: EmbeddedRegistry, trade_bytes: bytes) -> None:
    at_limit = AvroCodec(registry, max_record_bytes=len(trade_bytes))
    assert isinstance(at_limit.decode(trade_bytes), Trade)
    small = AvroCodec(registry, max_record_bytes=len(trade_bytes) - 1)
    with pytest.raises(RecordTooLarge, match=str(len(trade_bytes))):
        small.decode(trade_bytes)


def test_encode_over_max_record_bytes(registry: EmbeddedRegistry) -> None:
    small = AvroCodec(registry, max_record_bytes=64)
    with pytest.raises(RecordTooLarge, match="max_record_bytes"):
        small.encode(make_trade())


# --- encode errors --------------------------------------------------------------------


def _bad_envelope(**changes: Any) -> dict[str, Any]:
    return {"envelope": make_envelope(Trade, **changes)}


BAD_VALUES = {
    "price-19-places": ("price", {"price": Decimal("64012.1000000000000000001")}),
    "price-NaN": ("price", {"price": Decimal("NaN")}),
    "size-str": ("size", {"size": "0.003"}),
    "size-float": ("size", {"size": 0.003}),
    "trade_id-str": ("trade_id", {"trade_id": "2041337901"}),
    "trade_id-over-long": ("trade_id", {"trade_id": 2**63}),
    "taker_side-unknown": ("taker_side", {"taker_side": "SIDEWAYS"}),
    "trade_time-str": ("trade_time", {"trade_time": "2024-03-14T09:26:53Z"}),
    "symbol-None": ("symbol", {"symbol": None}),
    "envelope.retry_count-str": ("retry_count", _bad_envelope(retry_count="3")),
}


@pytest.mark.parametrize(("field", "changes"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_value_is_encode_error_naming_the_field(
    codec: AvroCodec, field: str, changes: dict[str, Any]
) -> None:
    with pytest.raises(EncodeError) as raised:
        codec.encode(make_trade(**changes))
    message = str(raised.value)
    assert "ticktide.market.Trade" in message
    assert field in message, f"message does not name {field!r}: {message}"
