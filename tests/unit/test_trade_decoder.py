"""The hot-path trade decoder agrees with the full codec, on every Trade schema version."""

from __future__ import annotations

import io
import struct
from datetime import timedelta
from decimal import Context, Decimal

import fastavro
import pytest

from domain.clock import EPOCH
from schemas.files import all_versions
from streams.errors import DecodeError, UnexpectedRecordType
from streams.hotpath.trade_decoder import TickDecoder
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry, embedded_schema_id
from tests.factories import make_candle, make_trade

EXACT = Context(prec=80)
CODEC = AvroCodec(EmbeddedRegistry())
DECODER = TickDecoder(CODEC)


@pytest.mark.parametrize(("price", "size"), [("64000.10", "0.003"), ("0.000000000000000001", "1"),
                                             ("123456789012.123456789012345678", "999.5")])
def test_tick_carries_exact_units(price: str, size: str) -> None:
    trade = make_trade(price=Decimal(price), size=Decimal(size))
    tick = DECODER.decode(CODEC.encode(trade))
    assert tick.price == int(Decimal(price).scaleb(18, EXACT)) and tick.size == int(Decimal(size).scaleb(18, EXACT))
    assert tick.time_us == (trade.trade_time - EPOCH) // timedelta(microseconds=1)
    assert (tick.symbol, tick.trade_id, tick.buy) == (trade.symbol, trade.trade_id, trade.taker_side == "BUY")


def test_v1_trades_decode_too() -> None:
    v1 = all_versions()["ticktide.market.Trade"][0]
    trade = make_trade()
    data = {f["name"]: getattr(trade, f["name"]) for f in v1.schema["fields"] if f["name"] != "envelope"}
    data["envelope"] = {f: getattr(trade.envelope, f) for f in trade.envelope.__dataclass_fields__}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(v1.schema), data)
    wire = struct.pack(">bI", 0, embedded_schema_id(v1.schema)) + body.getvalue()
    assert DECODER.decode(wire).price == int(trade.price.scaleb(18))


def test_other_records_and_garbage_are_decode_errors() -> None:
    with pytest.raises(UnexpectedRecordType):
        DECODER.decode(CODEC.encode(make_candle()))
    for bad in (b"", b"\x01\x00\x00\x00\x01abc", CODEC.encode(make_trade())[:-3]):
        with pytest.raises(DecodeError):
            DECODER.decode(bad)
