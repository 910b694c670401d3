"""Fuzzing AvroCodec.decode: any bytes give a typed record or a DecodeError, never a crash.

Consumers hand every record they fetch to ``decode`` and dead-letter what raises a
``DecodeError``; any other exception (or a hang) would stop the agent on one bad record.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.files import all_versions
from schemas.records import RECORD_TYPES
from streams.errors import DecodeError
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry, embedded_schema_id
from tests.factories import sample_events

CODEC = AvroCodec(EmbeddedRegistry(), max_record_bytes=4096)
RECORDS = [CODEC.encode(event) for event in sample_events()]
HEADER_SIZE = 5
SCHEMA_IDS = sorted(
    embedded_schema_id(v.schema) for history in all_versions().values() for v in history
)
FUZZ = settings(
    max_examples=2000,
    deadline=None,  # a hang is caught by the timeout mark, slowness is not the property
    suppress_health_check=[HealthCheck.too_slow],
)
pytestmark = pytest.mark.timeout(60)


def _decodes_or_refuses(data: bytes) -> None:
    """The property: a typed record, or a DecodeError subclass; anything else escapes."""
    try:
        event = CODEC.decode(data)
    except DecodeError:
        return
    assert type(event) in RECORD_TYPES.values()


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    """A valid record with 1-4 mutations of its body: bit flip, truncation, insertion,
    replacement (header damage has its own tests in test_codec.py)."""
    data = bytearray(draw(st.sampled_from(RECORDS)))
    for _ in range(draw(st.integers(1, 4))):
        if len(data) <= HEADER_SIZE:
            break
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "replace"]))
        at = draw(st.integers(HEADER_SIZE, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def valid_header_random_body(draw: st.DrawFn) -> bytes:
    """The header of a known schema followed by arbitrary bytes."""
    schema_id = draw(st.sampled_from(SCHEMA_IDS))
    return b"\x00" + struct.pack(">I", schema_id) + draw(st.binary(max_size=512))


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _decodes_or_refuses(data)


@FUZZ
@given(mutated_records())
def test_mutated_valid_records(data: bytes) -> None:
    _decodes_or_refuses(data)


@FUZZ
@given(valid_header_random_body())
def test_valid_header_random_body(data: bytes) -> None:
    _decodes_or_refuses(data)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff" * 10 + b"\x01",  # a 10-byte varint: zig-zag of -2**63
        b"\xff" * 11,  # a varint that never ends
        b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a length of 2**63 - 1
        b"\x80" * 64,  # a long run of continuation bytes
    ],
    ids=["min-long", "endless-varint", "huge-length", "continuations"],
)
def test_hostile_varints_at_every_offset(body: bytes) -> None:
    """Hostile varints spliced into every position of every valid record."""
    for record in RECORDS:
        for at in range(HEADER_SIZE, len(record)):
            _decodes_or_refuses(record[:at] + body + record[at:])
            _decodes_or_refuses(record[:at] + body)
