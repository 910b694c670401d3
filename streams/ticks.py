"""Hot-path decoding of market.trades: wire-format bytes straight to ``domain.candles.Tick``.

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

from domain.candles import Tick
from domain.validity import MAX_AMOUNT_BYTES
from schemas.records import Trade
from streams.codec import AvroCodec, read_body
from streams.errors import InvalidValue, UnexpectedRecordType

_SCALE = 18


def _strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("logicalType") == "decimal" and node.get("scale") != _SCALE:
            raise UnexpectedRecordType(f"decimal scale {node.get('scale')}, expected {_SCALE}")
        return {k: _strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(item) for item in node]
    return node


class TickDecoder:
    """Decodes Trade records of any schema version into Ticks."""

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = codec
        self._writers: dict[int, Any] = {}

    def _writer(self, schema_id: int) -> Any:
        writer = self._writers.get(schema_id)
        if writer is None:
            schema = self.codec.writer_schema(schema_id)
            name = f"{schema.get('namespace', '')}.{schema.get('name', '')}"
            if name != Trade.AVRO_NAME:
                raise UnexpectedRecordType(f"expected Trade, got {name} (schema id {schema_id})")
            writer = self._writers[schema_id] = fastavro.parse_schema(
                _strip_logical_types(copy.deepcopy(schema)))
        return writer

    def decode(self, data: bytes | None) -> Tick:
        """The Tick of a Trade record; a DecodeError subclass for anything else, InvalidValue
        for an amount wider than the contract (checked before conversion)."""
        schema_id = self.codec.schema_id_of(data)
        record = read_body(data, schema_id, self._writer(schema_id))  # type: ignore[arg-type]
        return Tick(
            record["symbol"],
            record["trade_id"],
            record["trade_time"],
            _units("price", record["price"]),
            _units("size", record["size"]),
            record["taker_side"] == "BUY",
        )


def _units(field: str, unscaled: bytes) -> int:
    """A decimal's unscaled bytes as an integer, refused before conversion if wider than
    decimal(38, 18) (a hostile record could carry a megabyte-long number)."""
    if len(unscaled) > MAX_AMOUNT_BYTES:
        raise InvalidValue(field, f"is too large for decimal(38, 18) ({len(unscaled)} bytes)")
    return int.from_bytes(unscaled, "big", signed=True)
