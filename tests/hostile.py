"""Hostile records for market.trades, as a producer we do not control could write them.

``hostile_records(codec, rng, now, symbols)`` makes a deterministic (for the ``rng``) list
of ``Hostile`` records: bytes that are not a ticktide record at all, records of other types,
and schema-valid Trades that break the Trade rules of ``domain/rules/validity.py``, each with
the reason it must be dead-lettered with. Values are encoded by hand (the codec's writer
or fastavro directly), never through ``EventProducer.send``, which would refuse them.

Every record here is invalid whatever the clock says during a test run of a few minutes:
future times are at least an hour ahead, never near the 300 s skew limit.
"""

from __future__ import annotations

import copy
import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro

from schemas.files import all_versions, latest
from schemas.records import Event, Trade
from streams.errors import UnknownSchemaId
from streams.kafka.codec import AvroCodec
from tests.factories import (
    make_candle,
    make_dead_letter,
    make_envelope,
    make_heartbeat,
    make_news,
    make_trade,
)

UNDECODABLE, INVALID = "undecodable", "invalid_value"
HEADER = struct.Struct(">bI")
MIB = 1024 * 1024
INTERNAL_KEYS = (b"#partition/0", b"#partition/1", b"#partition/2", b"#partition/3", b"#x", b"#",
                 b"__consumer_offsets", b"\x00\x00\x00\x00\x01")
MISROUTED = "MISUSDT"
"""Symbol of the ``wrong_partition`` records (none of the valid feed's)."""
TIME_2024 = datetime(2024, 7, 18, 23, 59, 30, tzinfo=UTC)
"""A plausible trade time (inside the recorded data's range) for records whose only fault
is elsewhere: if such a record were folded, it would land in a real candle."""


@dataclass
class Hostile:
    """One record to write to market.trades, and why it must be dead-lettered."""

    kind: str
    value: bytes | None
    reason: str
    """The dead letter's expected reason."""
    key: bytes | None = None
    partition: int | None = None
    """Where to write it (None: the test picks one)."""
    timestamp_ms: int | None = None
    """The Kafka record timestamp (None: the producer's clock)."""
    symbol: str | None = None
    """The valid feed's symbol the record names, if any."""


# --- encoding by hand -------------------------------------------------------------------


def _strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(item) for item in node]
    return node


class Forger:
    """Writes Trades the codec's producer side would refuse (no range checks)."""

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = AvroCodec(codec.registry, max_record_bytes=64 * MIB)  # no size limit either
        self.trade_id = codec.schema_id(Trade)
        self.header = HEADER.pack(0, self.trade_id)
        schema = latest(Trade.AVRO_NAME).schema
        self._raw = fastavro.parse_schema(_strip_logical_types(copy.deepcopy(schema)))
        widened = copy.deepcopy(schema)  # taker_side with a symbol the contract lacks
        for f in widened["fields"]:
            if f["name"] == "taker_side":
                f["type"] = {**f["type"], "symbols": [*f["type"]["symbols"], "HOLD", "SPOOF"]}
        self._widened = fastavro.parse_schema(widened)
        v1 = all_versions()[Trade.AVRO_NAME][0]
        assert v1.version == 1
        self.v1_header = HEADER.pack(0, codec.registry.register(v1))
        self._v1 = fastavro.parse_schema(v1.schema)

    def trade(self, **overrides: Any) -> bytes:
        """A Trade through the codec's writer (types checked, ranges not)."""
        return self.codec.encode(make_trade(**overrides))

    def raw(self, **overrides: Any) -> bytes:
        """A Trade body from plain Avro values (times in us, amounts as unscaled bytes), so
        values no typed record can hold (year 146,000, a 1,000-byte price) can be written."""
        trade = make_trade()
        envelope = {name: getattr(trade.envelope, name) for name in
                    ("event_id", "event_type", "producer", "schema_version", "correlation_id", "causation_id",
                     "retry_count")}
        envelope.update(event_time=_us(trade.envelope.event_time), ingest_time=_us(trade.envelope.ingest_time),
                        priority=trade.envelope.priority.value)
        record = {"envelope": envelope, "venue": trade.venue, "symbol": trade.symbol, "trade_id": trade.trade_id,
                  "price": _unscaled(trade.price), "size": _unscaled(trade.size), "taker_side": "BUY",
                  "trade_time": _us(trade.trade_time), "trade_type": "MARKET", "first_trade_id": None,
                  "last_trade_id": None}
        record.update(overrides)
        return self._write(self.header, self._raw, record)

    def bad_side(self, side: str) -> bytes:
        """A Trade whose taker_side enum index is past the contract's symbols."""
        record = _avro_of(make_trade())
        record["taker_side"] = side
        return self._write(self.header, self._widened, record)

    def v1(self, **overrides: Any) -> bytes:
        """A Trade in the older v1 schema (schema evolution path)."""
        record = _avro_of(make_trade(**overrides))
        for name in ("trade_type",):  # v2 only
            record.pop(name, None)
        return self._write(self.v1_header, self._v1, record)

    @staticmethod
    def _write(header: bytes, schema: Any, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, schema, record)
        return buffer.getvalue()


def _avro_of(event: Event) -> dict[str, Any]:
    from streams.kafka.codec import to_avro

    return to_avro(event)


def _us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _unscaled(amount: Decimal, scale: int = 18) -> bytes:
    units = int(amount.scaleb(scale))
    return units.to_bytes(max(1, (units.bit_length() + 8) // 8), "big", signed=True)


def unknown_schema_id(codec: AvroCodec, rng: random.Random) -> int:
    """A schema id the registry does not know."""
    while True:
        candidate = rng.randrange(0, 2**31)
        try:
            codec.registry.lookup(candidate)
        except UnknownSchemaId:
            return candidate


# --- the catalogue ----------------------------------------------------------------------


def hostile_records(codec: AvroCodec, rng: random.Random, now: datetime, symbols: list[str],
                    count: int) -> list[Hostile]:
    """At least ``count`` hostile records: every kind below at least once, then kinds drawn
    at random (the huge ones only once: they cost memory and time). ``symbols`` are the
    valid feed's symbols: rule-breaking Trades mostly use them, so a record folded by
    mistake would move a real symbol's clock or land in a real candle."""
    forger = Forger(codec)
    now_us = _us(now)
    hour = timedelta(hours=1)
    trade_no = iter(range(9_000_000_000, 10_000_000_000))
    named: list[str] = []  # the real symbol the record being made names

    def good(**overrides: Any) -> dict[str, Any]:
        """Trade fields that keep the rules (a real symbol, a 2024 time), then ``overrides``."""
        fields = {"symbol": rng.choice(symbols), "trade_id": next(trade_no), "trade_time": TIME_2024,
                  "envelope": make_envelope(Trade, event_time=TIME_2024), **overrides}
        if fields["symbol"] in symbols:
            named.append(fields["symbol"])
        return fields

    def kafka_time(kind: str, ms: int) -> Callable[[], Hostile]:
        return lambda: Hostile(kind, forger.trade(**good()), INVALID, timestamp_ms=ms)

    def framed(schema_id: int, body: bytes) -> bytes:
        return HEADER.pack(0, schema_id) + body

    def random_bytes() -> bytes:
        body = rng.randbytes(rng.randrange(1, 300))
        return bytes([rng.randrange(1, 256)]) + body  # never the magic byte 0

    def truncated() -> bytes:
        whole = forger.trade(**good())
        return whole[: rng.randrange(0, len(whole))]

    other_events: list[Callable[[], Event]] = [
        lambda: make_candle(), lambda: make_news(), lambda: make_heartbeat(),
        lambda: make_dead_letter(original_value=forger.trade(**good())),
    ]
    kinds: dict[str, Callable[[], Hostile]] = {
        # not a ticktide record at all
        "random_bytes": lambda: Hostile("random_bytes", random_bytes(), UNDECODABLE),
        "random_framed": lambda: Hostile("random_framed", framed(unknown_schema_id(codec, rng),
                                                                 rng.randbytes(rng.randrange(0, 300))), UNDECODABLE),
        "unknown_schema_id": lambda: Hostile("unknown_schema_id", framed(unknown_schema_id(codec, rng),
                                                                         forger.trade(**good())[5:]), UNDECODABLE),
        "empty": lambda: Hostile("empty", b"", UNDECODABLE),
        "header_only": lambda: Hostile("header_only", forger.header, UNDECODABLE),
        "short_header": lambda: Hostile("short_header", b"\x00\x00\x01", UNDECODABLE),
        "truncated": lambda: Hostile("truncated", truncated(), UNDECODABLE),
        "trailing_bytes": lambda: Hostile("trailing_bytes", forger.trade(**good()) + rng.randbytes(rng.randrange(1, 9)),
                                          UNDECODABLE),
        "tombstone": lambda: Hostile("tombstone", None, UNDECODABLE),
        "bad_enum": lambda: Hostile("bad_enum", forger.bad_side(rng.choice(["HOLD", "SPOOF"])), UNDECODABLE),
        "other_event": lambda: Hostile("other_event", codec.encode(rng.choice(other_events)()), UNDECODABLE),
        # a Trade that breaks the Trade rules
        "symbol_internal": lambda: Hostile("symbol_internal", forger.trade(**good(
            symbol=rng.choice(["#partition/0", "#partition/1", "#partition/2", "#partition/3", "#x", "#"]))), INVALID),
        "symbol_bad_text": lambda: Hostile("symbol_bad_text", forger.trade(**good(symbol=rng.choice(
            ["", " ", "BTC USDT", "BTCUSDT ", " BTCUSDT", "BTCUSDT\n", "-BTC", ".ETH", "_X", "BTC\x00USDT", "BTC:USDT",
             "ŁÓDŹ", "ETH€", "🚀", "\uff22", "BTCUSDT\u200b", "x" * 33, "ETHUSDT" * 5]))), INVALID),
        "symbol_10k": lambda: Hostile("symbol_10k", forger.trade(**good(symbol="S" * 10_000)), INVALID),
        "price_zero": lambda: Hostile("price_zero", forger.trade(**good(price=Decimal(0))), INVALID),
        "price_negative": lambda: Hostile("price_negative", forger.trade(**good(
            price=rng.choice([Decimal("-1"), Decimal("-64012.1"), Decimal("-1E-18")]))), INVALID),
        "price_too_large": lambda: Hostile("price_too_large", forger.trade(**good(price=Decimal("1E+20"))), INVALID),
        "price_1000_bytes": lambda: Hostile("price_1000_bytes", forger.raw(
            price=b"\x01" + rng.randbytes(999), trade_time=_us(TIME_2024), trade_id=next(trade_no)), INVALID),
        "size_zero": lambda: Hostile("size_zero", forger.trade(**good(size=Decimal(0))), INVALID),
        "size_negative": lambda: Hostile("size_negative", forger.trade(**good(size=Decimal("-0.5"))), INVALID),
        "trade_id_negative": lambda: Hostile("trade_id_negative", forger.trade(**good(
            trade_id=rng.choice([-1, -(2**63)]))), INVALID),
        "time_1970": lambda: Hostile("time_1970", forger.trade(**good(
            trade_time=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 86_400)))), INVALID),
        "time_year_1": lambda: Hostile("time_year_1", forger.trade(**good(trade_time=datetime(1, 1, 1, tzinfo=UTC))),
                                       INVALID),
        "time_2008": lambda: Hostile("time_2008", forger.trade(**good(trade_time=datetime(2008, 12, 31, 23, 59, 59,
                                                                                          tzinfo=UTC))), INVALID),
        "time_2999": lambda: Hostile("time_2999", forger.trade(**good(trade_time=datetime(2999, 1, 1, tzinfo=UTC))),
                                     INVALID),
        "time_now_plus_1h": lambda: Hostile("time_now_plus_1h", forger.trade(**good(trade_time=now + hour)), INVALID),
        "time_far_raw": lambda: Hostile("time_far_raw", forger.raw(
            trade_time=rng.choice([2**62, -(2**62), 2**63 - 1, -(2**63)]), trade_id=next(trade_no)), INVALID),
        "v1_price_zero": lambda: Hostile("v1_price_zero", forger.v1(**good(price=Decimal(0))), INVALID),
        "v1_time_2999": lambda: Hostile("v1_time_2999", forger.v1(**good(trade_time=datetime(2999, 1, 1, tzinfo=UTC))),
                                        INVALID),
        "everything_wrong": lambda: Hostile("everything_wrong", forger.trade(**good(
            symbol="#partition/0", price=Decimal(-1), size=Decimal(0), trade_id=-5,
            trade_time=datetime(2999, 1, 1, tzinfo=UTC))), INVALID, timestamp_ms=int(2.5e14)),
        # a valid Trade with a Kafka record timestamp out of bounds
        "kafka_timestamp_far_future": kafka_time("kafka_timestamp_far_future", int(2.5e14)),
        "kafka_timestamp_now_plus_1h": kafka_time("kafka_timestamp_now_plus_1h", (now_us + 3_600_000_000) // 1000),
        "kafka_timestamp_1970": kafka_time("kafka_timestamp_1970", 1),
        "kafka_timestamp_2008": kafka_time("kafka_timestamp_2008", _us(datetime(2008, 6, 1, tzinfo=UTC)) // 1000),
        # the rest of the Trade rule (venue, trade ids, envelope)
        "venue_too_long": lambda: Hostile("venue_too_long", forger.trade(**good(venue="v" * 33)), INVALID),
        "venue_empty": lambda: Hostile("venue_empty", forger.trade(**good(venue="")), INVALID),
        "first_after_last": lambda: Hostile("first_after_last", forger.trade(**good(
            first_trade_id=10, last_trade_id=9)), INVALID),
        "envelope_time_2999": lambda: Hostile("envelope_time_2999", forger.trade(**good(
            envelope=make_envelope(Trade, event_time=datetime(2999, 1, 1, tzinfo=UTC)))), INVALID),
        # a Trade valid in every field, written by the foreign producer to a partition that
        # is not its symbol's (the test picks the partition): the symbol's rows live in the
        # partition of its key, the symbol (streams/kafka/catalog.py, tables/candles.py)
        "wrong_partition": lambda: Hostile("wrong_partition", forger.trade(**good(symbol=MISROUTED)), INVALID,
                                           key=rng.choice([MISROUTED.encode(), None])),
    }
    huge: dict[str, Callable[[], Hostile]] = {
        # under the record limit (max_record_bytes, 1 MiB): decoded, then refused by the Trade rule
        "symbol_600k": lambda: Hostile("symbol_600k", forger.trade(**good(symbol="B" * 600_000)), INVALID),
        "venue_600k": lambda: Hostile("venue_600k", forger.trade(**good(venue="V" * 600_000)), INVALID),
        # over it, or not a record: refused before decoding
        "random_800k": lambda: Hostile("random_800k", random_bytes() + rng.randbytes(800_000), UNDECODABLE),
        "symbol_1mib": lambda: Hostile("symbol_1mib", forger.trade(**good(symbol="S" * MIB)), UNDECODABLE),
        # 1,020,000 characters: under Apache Kafka's default max.message.bytes (1,048,588)
        "venue_1mb": lambda: Hostile("venue_1mb", forger.trade(**good(venue="V" * 1_020_000)), INVALID),
        "random_1mib": lambda: Hostile("random_1mib", random_bytes() + rng.randbytes(MIB), UNDECODABLE),
    }
    def made(make: Callable[[], Hostile]) -> Hostile:
        named.clear()
        record = make()
        record.symbol = named[0] if named else None
        return record

    records = [made(make) for make in kinds.values()] + [made(make) for make in huge.values()]
    choices = list(kinds.values())
    while len(records) < count:
        records.append(made(rng.choice(choices)))
    for record in records:
        if record.key is None and (record.value is None or rng.random() < 0.85):  # a tombstone needs a key
            record.key = rng.choice([*INTERNAL_KEYS, *(s.encode() for s in symbols), rng.randbytes(16), b"k" * 1000])
    return records

