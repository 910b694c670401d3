"""Hot-path decoding of market.trades: wire-format bytes straight to ``domain.market.candles.Tick``.

The full codec builds a typed Trade (an Envelope, Decimals, datetimes). The candle fold
needs six fields as integers, so this decoder reads the record with the logical types
stripped from the writer schema: decimals arrive as their unscaled big-endian bytes (the
exact 1e-18 units the fold uses) and timestamps as microseconds. Same wire format, same
errors as the codec.
"""

from __future__ import annotations

import copy
from typing import Any

import fastavro
from aiokafka.partitioner import murmur2

from domain.market.bars import Tick
from domain.rules.fields import MAX_AMOUNT_BYTES, TimeBounds
from domain.rules.validity import raw_trade_violation, record_time_violation
from schemas.records import Trade
from streams.errors import InvalidValue, UnexpectedRecordType
from streams.kafka.codec import AvroCodec, read_body

_SCALE = 18
MAX_REMEMBERED_SYMBOLS = 100_000


def strip_logical_types(node: Any) -> Any:
    """A schema whose decimals (scale 18) read as unscaled bytes and times as integers."""
    if isinstance(node, dict):
        if node.get("logicalType") == "decimal" and node.get("scale") != _SCALE:
            raise UnexpectedRecordType(f"decimal scale {node.get('scale')}, expected {_SCALE}")
        return {k: strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [strip_logical_types(item) for item in node]
    return node


class TickDecoder:
    """Decodes Trade records of any schema version into Ticks."""

    def __init__(self, codec: AvroCodec, partitions: int = 0) -> None:
        self.codec = codec
        self.partitions = partitions
        """Partitions of market.trades, to check a trade is in its symbol's (0: not checked)."""
        self._writers: dict[int, Any] = {}
        self._partitions: dict[str, int] = {}

    def _writer(self, schema_id: int) -> Any:
        writer = self._writers.get(schema_id)
        if writer is None:
            schema = self.codec.writer_schema(schema_id)
            name = f"{schema.get('namespace', '')}.{schema.get('name', '')}"
            if name != Trade.AVRO_NAME:
                raise UnexpectedRecordType(f"expected Trade, got {name} (schema id {schema_id})")
            writer = self._writers[schema_id] = fastavro.parse_schema(
                strip_logical_types(copy.deepcopy(schema)))
        return writer

    def decode(self, data: bytes | None) -> Tick:
        """The Tick of a Trade record; a DecodeError subclass for anything else, InvalidValue
        for an amount wider than the contract (checked before conversion)."""
        return self._tick(self._read(data))

    def decode_checked(self, data: bytes | None, timestamp_ms: int, partition: int, bounds: TimeBounds) -> Tick:
        """The Tick of a Trade record that keeps the whole Trade rule (domain/rules/validity.py),
        has a sane Kafka timestamp and sits in its symbol's partition; DecodeError or
        InvalidValue otherwise."""
        record = self._read(data)
        tick = self._tick(record)
        violation = (raw_trade_violation(record, tick.price, tick.size, bounds)
                     or record_time_violation(timestamp_ms, bounds))
        if violation is not None:
            raise InvalidValue(violation.field, violation.problem)
        if self.partitions and self._partition_of(tick.symbol) != partition:
            raise InvalidValue("symbol", f"{tick.symbol} belongs to partition {self._partition_of(tick.symbol)} "
                               f"of market.trades, not {partition} where it was written")
        return tick

    def _read(self, data: bytes | None) -> dict[str, Any]:
        schema_id = self.codec.schema_id_of(data)
        return read_body(data, schema_id, self._writer(schema_id))  # type: ignore[arg-type]

    @staticmethod
    def _tick(record: dict[str, Any]) -> Tick:
        return Tick(
            record["symbol"],
            record["trade_id"],
            record["trade_time"],
            _units("price", record["price"]),
            _units("size", record["size"]),
            record["taker_side"] == "BUY",
        )

    def _partition_of(self, symbol: str) -> int:
        """The partition a symbol's trades go to (Java murmur2 of the key, as every producer)."""
        partition = self._partitions.get(symbol)
        if partition is None:
            if len(self._partitions) >= MAX_REMEMBERED_SYMBOLS:
                self._partitions.clear()
            partition = self._partitions[symbol] = (murmur2(symbol.encode()) & 0x7FFFFFFF) % self.partitions
        return partition


def _units(field: str, unscaled: bytes) -> int:
    """A decimal's unscaled bytes as an integer, refused before conversion if wider than
    decimal(38, 18) (a hostile record could carry a megabyte-long number)."""
    if len(unscaled) > MAX_AMOUNT_BYTES:
        raise InvalidValue(field, f"is too large for decimal(38, 18) ({len(unscaled)} bytes)")
    return int.from_bytes(unscaled, "big", signed=True)
