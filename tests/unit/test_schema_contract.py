"""The .avsc files are the contract: the typed records agree with them field by field,
and every schema only evolves in BACKWARD-compatible steps."""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse as parse_avro

from schemas.files import SchemaVersion, all_versions, latest
from schemas.records import ENUM_TYPES, RECORD_TYPES, Envelope

ENVELOPE_FIELDS = [
    "event_id", "event_type", "event_time", "ingest_time", "producer", "schema_version",
    "correlation_id", "causation_id", "priority", "retry_count",
]


def _python_type(avro_type: Any, namespace: str) -> Any:
    """The Python annotation a field of this Avro type must have."""
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        assert len(branches) == 1, f"only [null, T] unions are used: {avro_type}"
        inner = _python_type(branches[0], namespace)
        return inner | None if "null" in avro_type else inner
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        kind = avro_type["type"]
        if logical == "decimal":
            assert (avro_type["precision"], avro_type["scale"]) == (38, 18)
            return Decimal
        if logical == "timestamp-micros":
            return datetime
        if kind == "enum":
            ns = avro_type.get("namespace", namespace)
            enum = ENUM_TYPES[f"{ns}.{avro_type['name']}"]
            assert [e.value for e in enum] == avro_type["symbols"]
            return enum
        if kind == "array":
            return list[_python_type(avro_type["items"], namespace)]  # type: ignore[misc]
        if kind == "map":
            return dict[str, _python_type(avro_type["values"], namespace)]  # type: ignore[misc]
        if kind == "record":
            return Envelope if avro_type["name"] == "Envelope" else None
        return _python_type(kind, namespace)
    return {"string": str, "long": int, "int": int, "double": float, "boolean": bool,
            "bytes": bytes}[avro_type]


@pytest.mark.parametrize("name", sorted(RECORD_TYPES))
def test_record_matches_latest_avsc_field_by_field(name: str) -> None:
    cls = RECORD_TYPES[name]
    version = latest(name)
    schema = version.schema
    hints = typing.get_type_hints(cls)
    record_fields = [f.name for f in dataclasses.fields(cls)]
    assert record_fields == [f["name"] for f in schema["fields"]]
    for field in schema["fields"]:
        expected = _python_type(field["type"], schema["namespace"])
        assert hints[field["name"]] == expected, field["name"]
    assert version.version == cls.SCHEMA_VERSION
    assert name == f"{schema['namespace']}.{schema['name']}" and cls.__name__ == schema["name"]


def test_every_schema_has_the_fixed_envelope() -> None:
    envelope_hints = typing.get_type_hints(Envelope)
    assert [f.name for f in dataclasses.fields(Envelope)] == ENVELOPE_FIELDS
    for name in RECORD_TYPES:
        fields = latest(name).schema["fields"]
        assert fields[0]["name"] == "envelope"
        envelope = fields[0]["type"]
        assert [f["name"] for f in envelope["fields"]] == ENVELOPE_FIELDS
        for field in envelope["fields"]:
            assert envelope_hints[field["name"]] == _python_type(field["type"], "ticktide")
        times = {f["name"]: f["type"] for f in envelope["fields"]}
        assert times["event_time"]["logicalType"] == "timestamp-micros"


def test_every_event_category_is_covered() -> None:
    categories = {v[-1].category for v in all_versions().values()}
    assert categories == {"market", "analysis", "trading", "system", "user"}
    assert set(all_versions()) == set(RECORD_TYPES)


def _backward_compatible(new: SchemaVersion | dict, old: SchemaVersion | dict) -> bool:
    def parse(s: SchemaVersion | dict) -> Any:
        return parse_avro(json.dumps(s.schema if isinstance(s, SchemaVersion) else s))

    result = ReaderWriterCompatibilityChecker().get_compatibility(
        reader=parse(new), writer=parse(old))
    return result.compatibility is SchemaCompatibilityType.compatible


@pytest.mark.parametrize("name", sorted(all_versions()))
def test_each_later_version_reads_every_earlier_one(name: str) -> None:
    versions = all_versions()[name]
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    for i, newer in enumerate(versions):
        for older in versions[:i]:
            assert _backward_compatible(newer, older), f"{name} v{newer.version} vs v{older.version}"


def test_the_check_rejects_an_incompatible_change() -> None:
    trade = latest("ticktide.market.Trade").schema
    required_field = copy.deepcopy(trade)
    required_field["fields"].append({"name": "exchange_fee", "type": "double"})  # no default
    assert not _backward_compatible(required_field, trade)
    retyped = copy.deepcopy(trade)
    next(f for f in retyped["fields"] if f["name"] == "trade_id")["type"] = "string"
    assert not _backward_compatible(retyped, trade)
    with_default = copy.deepcopy(trade)
    with_default["fields"].append({"name": "exchange_fee", "type": ["null", "double"],
                                   "default": None})
    assert _backward_compatible(with_default, trade)


def test_enum_symbols_and_python_enums_agree() -> None:
    for enum in ENUM_TYPES.values():
        assert issubclass(enum, Enum)
        assert all(member.value == member.name for member in enum)
