"""Avro codec in the Confluent wire format: magic byte 0, 4-byte schema id, Avro body.

fastavro does the work. Encoding writes the latest version of an event's schema; decoding
reads with the writer's schema (looked up by id) and resolves to the latest version, so
records written by older producers decode into today's typed records. Every failure is a
``DecodeError`` or ``EncodeError`` subclass, never a crash.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

import fastavro
from fastavro.validation import ValidationError, validate

from schemas.files import Schema, SchemaVersion, latest
from schemas.records import ENUM_TYPES, RECORD_TYPES, Envelope, Event
from streams.errors import (
    BadMagicByte,
    CorruptRecord,
    DecodeError,
    EncodeError,
    RecordTooLarge,
    TruncatedRecord,
    UnexpectedRecordType,
    UnknownSchemaId,
)
from streams.kafka.registry import SchemaRegistry

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024

E = TypeVar("E", bound=Event)


def _enum_converters(schema: Schema) -> dict[str, type[StrEnum]]:
    """Field name -> Python enum, for the enum-typed fields of a record schema."""
    found: dict[str, type[StrEnum]] = {}
    namespace = schema.get("namespace", "")
    for field in schema["fields"]:
        kind = field["type"]
        if isinstance(kind, dict) and kind.get("type") == "enum":
            ns = kind.get("namespace", namespace)
            found[field["name"]] = ENUM_TYPES[f"{ns}.{kind['name']}"]
    return found


@cache
def _envelope_enums() -> dict[str, type[StrEnum]]:
    envelope = next(f["type"] for f in latest("ticktide.market.Trade").schema["fields"]
                    if f["name"] == "envelope")
    return _enum_converters(envelope)


def _decoder_for(cls: type[Event]) -> Callable[[dict[str, Any]], Event]:
    """A function turning fastavro's dict into a typed record (enums made typed)."""
    enums = _enum_converters(latest(cls.AVRO_NAME).schema)
    envelope_enums = _envelope_enums()

    def build(data: dict[str, Any]) -> Event:
        envelope = data["envelope"]
        for name, enum in envelope_enums.items():
            envelope[name] = enum(envelope[name])
        data["envelope"] = Envelope(**envelope)
        for name, enum in enums.items():
            data[name] = enum(data[name])
        return cls(**data)

    return build


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names in declaration order, looked up once per class."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _decimal_problem(schema: Schema, data: dict[str, Any], prefix: str) -> str | None:
    """Name the first decimal field whose value its schema cannot hold (fastavro's own
    errors for these do not say which field)."""
    for field in schema["fields"]:
        kind, value, name = field["type"], data.get(field["name"]), prefix + field["name"]
        branches = kind if isinstance(kind, list) else [kind]
        for branch in branches:
            if not isinstance(branch, dict):
                continue
            if branch.get("type") == "record" and isinstance(value, dict):
                nested = _decimal_problem(branch, value, f"{name}.")
                if nested:
                    return nested
            if branch.get("logicalType") == "decimal" and isinstance(value, Decimal):
                if not value.is_finite():
                    return f"{name} must be a finite number, got {value}"
                exponent = value.as_tuple().exponent
                if isinstance(exponent, int) and -exponent > branch["scale"]:
                    return f"{name} has more than {branch['scale']} decimal places: {value}"
    return None


def to_avro(event: Event) -> dict[str, Any]:
    """The dict fastavro writes for a typed record."""
    data = {name: getattr(event, name) for name in field_names(type(event))}
    envelope = event.envelope
    data["envelope"] = {name: getattr(envelope, name) for name in field_names(Envelope)}
    return data


def read_body(data: bytes, schema_id: int, writer: Any, reader: Any = None) -> dict[str, Any]:
    """Read the Avro body after the 5-byte header; the whole record must be used."""
    buffer = io.BytesIO(data)
    buffer.seek(HEADER.size)
    try:
        record = fastavro.schemaless_reader(buffer, writer, reader)
    except (EOFError, IndexError):  # fastavro reads past the end of the buffer
        raise TruncatedRecord(f"record ends early for schema id {schema_id}") from None
    except Exception as exc:
        raise CorruptRecord(f"body does not match schema id {schema_id}: {exc}") from None
    if buffer.tell() != len(data):
        raise CorruptRecord(
            f"{len(data) - buffer.tell()} trailing bytes after the record (schema id {schema_id})"
        )
    if not isinstance(record, dict):
        raise CorruptRecord(f"schema id {schema_id} is not a record schema")
    return record


class AvroCodec:
    """Encodes typed records to Confluent-framed Avro and back."""

    def __init__(self, registry: SchemaRegistry, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES):
        self.registry = registry
        self.max_record_bytes = max_record_bytes
        self._writers: dict[type[Event], tuple[bytes, Any, SchemaVersion]] = {}
        self._readers: dict[int, tuple[Any, Any, Callable[[dict[str, Any]], Event]]] = {}

    # -- encode ---------------------------------------------------------------------

    def _writer(self, cls: type[Event]) -> tuple[bytes, Any, SchemaVersion]:
        writer = self._writers.get(cls)
        if writer is None:
            version = latest(cls.AVRO_NAME)
            schema_id = self.registry.register(version)
            parsed = fastavro.parse_schema(version.schema)
            writer = (HEADER.pack(MAGIC_BYTE, schema_id), parsed, version)
            self._writers[cls] = writer
        return writer

    def header_of(self, cls: type[Event]) -> bytes:
        """The wire-format header (magic byte, schema id) of the records this codec writes for ``cls``."""
        return self._writer(cls)[0]

    def schema_id(self, cls: type[Event]) -> int:
        """The registry id of the schema this codec writes for ``cls``."""
        return int(HEADER.unpack(self._writer(cls)[0])[1])

    def encode(self, event: Event) -> bytes:
        """Wire-format bytes of a record; EncodeError names the bad field."""
        header, parsed, version = self._writer(type(event))
        data = to_avro(event)
        buffer = io.BytesIO()
        buffer.write(header)
        try:
            fastavro.schemaless_writer(buffer, parsed, data)
        except Exception as exc:
            raise EncodeError(self._explain(version, data, exc)) from None
        encoded = buffer.getvalue()
        if len(encoded) > self.max_record_bytes:
            raise RecordTooLarge(
                f"{type(event).__name__} is {len(encoded)} bytes, over the "
                f"{self.max_record_bytes}-byte limit (max_record_bytes)"
            )
        return encoded

    @staticmethod
    def _explain(version: SchemaVersion, data: dict[str, Any], exc: Exception) -> str:
        problem = _decimal_problem(version.schema, data, "")
        if problem:
            return f"{version.full_name}: {problem}"
        try:
            validate(data, version.schema, raise_errors=True)
        except ValidationError as invalid:
            return f"{version.full_name}: {invalid}"
        except Exception:  # validation itself may choke on the same bad value
            pass
        return f"{version.full_name}: {type(exc).__name__}: {exc}"

    # -- decode ---------------------------------------------------------------------

    def _reader(self, schema_id: int) -> tuple[Any, Any, Callable[[dict[str, Any]], Event]]:
        reader = self._readers.get(schema_id)
        if reader is None:
            writer_schema = self.writer_schema(schema_id)
            name = f"{writer_schema.get('namespace', '')}.{writer_schema.get('name', '')}"
            cls = RECORD_TYPES.get(name)
            if cls is None:
                raise UnknownSchemaId(f"schema id {schema_id} is {name!r}, not a ticktide event")
            reader_version = latest(name)
            writer_parsed = fastavro.parse_schema(writer_schema)
            reader_parsed = (
                None
                if writer_schema == reader_version.schema
                else fastavro.parse_schema(reader_version.schema)
            )
            reader = (writer_parsed, reader_parsed, _decoder_for(cls))
            self._readers[schema_id] = reader
        return reader

    def schema_id_of(self, data: bytes | None) -> int:
        """The schema id in a record's header, after checking size and magic byte."""
        if data is None or len(data) < HEADER.size:
            size = 0 if data is None else len(data)
            raise TruncatedRecord(f"record of {size} bytes is shorter than the 5-byte header")
        if len(data) > self.max_record_bytes:
            raise RecordTooLarge(
                f"record of {len(data)} bytes is over the {self.max_record_bytes}-byte limit"
            )
        magic, schema_id = HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise BadMagicByte(f"first byte is {data[0]}, not the wire-format magic byte 0")
        return int(schema_id)

    def writer_schema(self, schema_id: int) -> Schema:
        """The writer schema of an id (from the registry); UnknownSchemaId if unknown."""
        return self.registry.lookup(schema_id)

    def decode(self, data: bytes | None) -> Event:
        """The typed record in wire-format bytes; raises a DecodeError subclass."""
        schema_id = self.schema_id_of(data)
        writer, reader, build = self._reader(schema_id)
        record = read_body(data, schema_id, writer, reader)  # type: ignore[arg-type]
        try:
            return build(record)
        except DecodeError:
            raise
        except Exception as exc:
            raise CorruptRecord(f"record does not fit its type: {exc}") from None

    def decode_as(self, data: bytes | None, expected: type[E]) -> E:
        """Decode and check the type; UnexpectedRecordType for any other event."""
        event = self.decode(data)
        if not isinstance(event, expected):
            raise UnexpectedRecordType(
                f"expected {expected.__name__}, got {type(event).__name__}"
            )
        return event
