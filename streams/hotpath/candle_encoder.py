"""Hot-path encoding of final candles: a bar's integers straight to wire-format Avro.

``AvroCodec.encode(candle_record(...))`` builds a typed Candle (ten Decimals, datetimes, an
Envelope), checks it and hands it to fastavro: about 200 us a candle. With thousands of
symbols a 1-second window closes about once per trade, so that was the hot path's largest
cost. This encoder writes the same bytes from the bar's integers: Avro's binary encoding of
the Candle schema is a fixed sequence of varints and length-prefixed bytes, written here
field by field. It checks at start that the schema it writes is the one it was made for
(tests also compare its bytes with the codec's), and refuses the one thing a candle folded
from valid trades can get wrong: an amount summed past decimal(38, 18).
"""

from __future__ import annotations

from typing import Any

from domain.candles import UNITS, ClosedCandle, round_units
from schemas.files import latest
from schemas.records import Candle, Priority
from streams.errors import ConfigError, InvalidValue
from streams.kafka.codec import AvroCodec

_LIMIT = 10**38  # decimal(38, 18): at most 38 digits of 1e-18 units
_DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18}
_MICROS = {"type": "long", "logicalType": "timestamp-micros"}
LAYOUT: tuple[tuple[str, Any], ...] = (
    ("envelope", "ticktide.Envelope"), ("symbol", "string"), ("interval", "string"),
    ("window_start", _MICROS), ("window_end", _MICROS),
    *((name, _DECIMAL) for name in ("open", "high", "low", "close", "volume", "quote_volume", "vwap")),
    ("trade_count", "long"), ("buy_volume", _DECIMAL), ("sell_volume", _DECIMAL),
    ("first_trade_id", "long"), ("last_trade_id", "long"),
)
"""The Candle fields this encoder writes, in order, with their Avro types."""
_ENVELOPE = ("event_id", "event_type", "event_time", "ingest_time", "producer", "schema_version",
             "correlation_id", "causation_id", "priority", "retry_count")


def varint(n: int) -> bytes:
    """Avro's zig-zag varint of a long."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _text(value: str) -> bytes:
    data = value.encode()
    return varint(len(data)) + data


def _decimal(units: int) -> bytes:
    """A decimal's unscaled two's-complement bytes, length first (as fastavro writes them)."""
    data = units.to_bytes((units.bit_length() + 8) // 8, "big", signed=True)
    return varint(len(data)) + data


class CandleEncoder:
    """Encodes final candles exactly as the codec encodes their Candle records."""

    def __init__(self, codec: AvroCodec, producer: str) -> None:
        schema = latest(Candle.AVRO_NAME).schema
        fields = tuple((f["name"], f["type"]) for f in schema["fields"])
        envelope = fields[0][1] if fields and isinstance(fields[0][1], dict) else {}
        if fields[1:] != LAYOUT[1:] or tuple(f["name"] for f in envelope.get("fields", ())) != _ENVELOPE:
            raise ConfigError(f"the Candle schema v{Candle.SCHEMA_VERSION} is not the layout "
                              "streams/hotpath/candle_encoder.py writes: update the encoder")
        priority = envelope["fields"][_ENVELOPE.index("priority")]["type"]["symbols"].index(Priority.NORMAL.value)
        self.header = codec.header_of(Candle)
        # after the event id: event type, then (per record) two times, then these
        self._type = _text("Candle")
        self._envelope_tail = (_text(producer) + varint(Candle.SCHEMA_VERSION) + b"\x00\x00" + varint(priority)
                               + varint(0))

    def encode(self, closed: ClosedCandle, ingest_us: int) -> bytes:
        """Wire-format bytes of the candle's record; InvalidValue if an amount does not fit."""
        bar = closed.bar
        amounts = (bar.open, bar.high, bar.low, bar.close, bar.volume, round_units(bar.quote, UNITS), bar.vwap)
        sides = (bar.buy_volume, bar.sell_volume)
        for value in (*amounts, *sides):
            if not -_LIMIT < value < _LIMIT:
                raise InvalidValue("volume", f"of the {closed.symbol} {closed.interval} candle at {bar.start_us} us "
                                             "has an amount beyond decimal(38, 18)")
        return b"".join((
            self.header, _text(closed.candle_id), self._type, varint(bar.end_us), varint(ingest_us),
            self._envelope_tail, _text(closed.symbol), _text(closed.interval), varint(bar.start_us),
            varint(bar.end_us), *map(_decimal, amounts), varint(bar.count), *map(_decimal, sides),
            varint(bar.first_id), varint(bar.last_id),
        ))
