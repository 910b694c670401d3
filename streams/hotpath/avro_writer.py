"""Avro binary encoding from raw values, compiled once per schema: the hot path's writer.

The codec builds typed records (Decimals, datetimes, an Envelope) and hands them to
fastavro, about 100-200 us a record here. The hot path's outputs (final candles, marks)
are made from integers: ``RawWriter`` writes them straight, with decimals given as their
unscaled integers (scale of the schema) and timestamps as microseconds, to the same bytes
the codec writes (tests compare them). It refuses what the contract cannot hold: a decimal
past its precision, an enum symbol it does not have.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from streams.errors import ConfigError, InvalidValue

Write = Callable[[Any], bytes]


def _slow_varint(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_slow_varint(n) for n in range(-8192, 8192)]  # two bytes and less: a table
_LOW14 = [bytes(((c & 0x7F) | 0x80, ((c >> 7) & 0x7F) | 0x80)) for c in range(1 << 14)]
"""The 14 low bits of a longer varint: two continued bytes."""


def varint(n: int) -> bytes:
    """Avro's zig-zag varint of a long."""
    if -8192 <= n < 8192:
        return _SMALL[n + 8192]
    n = (n << 1) ^ (n >> 63)
    out = b""
    while n >= 1 << 14:
        out += _LOW14[n & 0x3FFF]
        n >>= 14
    return out + (_LOW14[n][:1] + bytes((n >> 7,)) if n >= 0x80 else bytes((n,)))


def _text(value: str) -> bytes:
    data = value.encode()
    return _SMALL[len(data) + 8192] + data if len(data) < 8192 else varint(len(data)) + data


def _bytes(value: bytes) -> bytes:
    return varint(len(value)) + value


def _decimal(precision: int, name: str) -> Write:
    limit = 10**precision

    def write(units: int) -> bytes:
        if not -limit < units < limit:
            raise InvalidValue(name, f"{units} units do not fit decimal({precision}) digits")
        size = (units.bit_length() + 8) // 8
        return _SMALL[size + 8192] + units.to_bytes(size, "big", signed=True)  # size < 8192: precision

    write.same_bytes_as = f"decimal({precision})"  # type: ignore[attr-defined]
    return write


def _enum(symbols: list[str], name: str) -> Write:
    index = {symbol: varint(i) for i, symbol in enumerate(symbols)}

    def write(value: str) -> bytes:
        found = index.get(value)
        if found is None:
            raise InvalidValue(name, f"{value!r} is not one of {symbols}")
        return found

    return write


def _array(items: Any, name: str, named: dict[str, Any]) -> Write:
    item = _leaf(items, f"{name}[]", named)

    def write(values: list[Any]) -> bytes:  # one block, then the empty block that ends the array
        return b"".join((varint(len(values)), *map(item, values), b"\x00")) if values else b"\x00"

    return write


def _union(branches: list[Any], name: str, named: dict[str, Any]) -> Write:
    if len(branches) != 2 or "null" not in branches:
        raise ValueError(f"{name}: only [null, T] unions are written raw")
    null_index = branches.index("null")
    other = _leaf(branches[1 - null_index], name, named)
    null, some = varint(null_index), varint(1 - null_index)
    return lambda value: null if value is None else some + other(value)


_PRIMITIVES: dict[str, Write] = {
    "string": _text, "bytes": _bytes, "long": varint, "int": varint,
    "boolean": lambda value: b"\x01" if value else b"\x00",
    "double": lambda value: struct.pack("<d", value), "float": lambda value: struct.pack("<f", value),
}


def leaf_writers(schema: Any, path: str = "", named: dict[str, Any] | None = None) -> list[tuple[str, Write]]:
    """The writers of a schema's leaves in encoding order, by dotted path (records flattened)."""
    named = {} if named is None else named
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, dict) and schema.get("type") == "record":
        named[f"{schema.get('namespace', '')}.{schema['name']}".lstrip(".")] = schema
        return [leaf for field in schema["fields"]
                for leaf in leaf_writers(field["type"], f"{path}.{field['name']}".lstrip("."), named)]
    return [(path, _leaf(schema, path, named))]


def _leaf(schema: Any, name: str, named: dict[str, Any]) -> Write:
    if isinstance(schema, str):
        return _PRIMITIVES[schema]
    if isinstance(schema, list):
        return _union(schema, name, named)
    kind = schema["type"]
    if kind == "array":
        return _array(schema["items"], name, named)
    if kind == "enum":
        named[f"{schema.get('namespace', '')}.{schema['name']}".lstrip(".")] = schema
        return _enum(schema["symbols"], name)
    if schema.get("logicalType") == "decimal" and kind == "bytes":
        return _decimal(schema["precision"], name)
    if isinstance(kind, str) and kind in _PRIMITIVES:  # timestamp-micros and the like: the raw long
        return _PRIMITIVES[kind]
    raise ValueError(f"{name}: {kind} is not written raw")


class RawWriter:
    """Encodes records of one schema from raw values, framed like the codec (magic, id).

    ``constants`` fixes fields that are the same in every record this writer writes (their
    bytes are made once); ``repeating`` names fields whose values recur from record to
    record (a window's end, the symbol): their bytes are kept for the next time (a bounded
    memo). ``encode`` takes the other fields' values in ``fields`` order, which the caller
    states so that a schema whose fields moved is noticed at start."""

    def __init__(self, header: bytes, schema: dict[str, Any], fields: tuple[str, ...],
                 constants: dict[str, Any], repeating: tuple[str, ...] = ()) -> None:
        plan: list[tuple[bytes, Write, dict[Any, bytes] | None]] = []
        pending = header
        shared: dict[str, dict[Any, bytes]] = {}  # one memo for the fields of one kind (every decimal(38))
        for path, write in leaf_writers(schema):
            kind = getattr(write, "same_bytes_as", None)
            if path in constants:
                pending += write(constants[path])
            else:
                known = {} if path in repeating else shared.setdefault(kind, {}) if kind else None
                plan.append((pending, write, known))
                pending = b""
        found = tuple(path for path, _ in leaf_writers(schema) if path not in constants)
        if found != fields:
            raise ConfigError(f"schema {schema.get('name')} has the fields {found}, the writer was made for {fields}")
        self.encode = _compiled(plan, pending)
        """Wire-format bytes of a record from its values (a tuple in ``fields`` order);
        InvalidValue for a value the contract cannot hold."""


MEMO_SIZE = 16_384
"""Values a field's memo keeps the bytes of (it starts again when full)."""


def remember(known: dict[Any, bytes], write: Write, value: Any) -> bytes:
    """``write(value)``, kept in ``known`` for the next time (a memo that starts again when full)."""
    if len(known) >= MEMO_SIZE:
        known.clear()
    found = known[value] = write(value)
    return found


def _compiled(plan: list[tuple[bytes, Write, dict[Any, bytes] | None]],
              tail: bytes) -> Callable[[tuple[Any, ...]], bytes]:
    """``encode(values)`` for a plan, as one generated function: the record's constant bytes
    and each field's writer inlined in order, no loop (it runs for every output record). A
    field with a memo looks its value up there first, inline (writers of fields with the same
    bytes for a value share one: a candle's open, high, low, close and vwap are often one price)."""
    scope: dict[str, Any] = {"tail": tail, "remember": remember}
    lines, parts = [], []
    for i, (prefix, write, known) in enumerate(plan):
        scope[f"p{i}"], scope[f"w{i}"], scope[f"k{i}"] = prefix, write, known
        parts += [f"p{i}"] if prefix else []
        if known is None:
            parts.append(f"w{i}(v{i})")
        else:
            lines += [f"b{i} = k{i}.get(v{i})", f"if b{i} is None: b{i} = remember(k{i}, w{i}, v{i})"]
            parts.append(f"b{i}")
    values = "".join(f"v{i}, " for i in range(len(plan)))
    body = "".join(f"    {line}\n" for line in [f"{values}= values", *lines])
    source = f"def encode(values):\n{body}    return b''.join(({', '.join(parts)}, tail))\n"
    exec(source, scope)  # the source is built above from the plan, never from input
    return scope["encode"]  # type: ignore[no-any-return]
