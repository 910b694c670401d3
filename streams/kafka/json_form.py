"""Events as JSON objects: what `ticktide consume` prints and `--format jsonl` reads.

Decimals are strings (exact), times ISO-8601 UTC with microseconds, bytes base64,
enums their symbol. ``event_from_json`` accepts the same plus epoch numbers for times
(seconds, milliseconds or microseconds, detected by magnitude).
"""

from __future__ import annotations

import base64
import dataclasses
import types
import typing
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from schemas.records import Envelope, Event
from streams.errors import InvalidInput
from streams.kafka.codec import field_names

E = TypeVar("E", bound=Event)


def format_decimal(value: Decimal) -> str:
    """Shortest exact text of a decimal, never in exponent notation (1E+2 -> 100)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


_PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types whose values are their own JSON form."""


def _to_json(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return event_to_json(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    return value


def event_to_json(event: Any) -> dict[str, Any]:
    """A JSON-ready dict of an event (or any dataclass, e.g. a table value): its fields
    in declaration order, the envelope included."""
    return {name: _to_json(getattr(event, name)) for name in field_names(event.__class__)}


def parse_time(value: Any) -> datetime:
    """An aware UTC datetime from ISO-8601 text or an epoch number (s, ms or us)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return epoch_to_datetime(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return epoch_to_datetime(int(text))
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a time: {value!r}")


def epoch_to_datetime(value: float) -> datetime:
    """Epoch seconds, milliseconds or microseconds (by magnitude) as aware UTC."""
    magnitude = abs(value)
    if magnitude >= 1e14:  # microseconds (after 1973)
        micros = int(value)
    elif magnitude >= 1e11:  # milliseconds
        micros = int(value * 1_000)
    else:
        micros = int(value * 1_000_000)
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


_HINTS: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _from_json(annotation: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _from_json(inner, value, name)
    if value is None:
        raise ValueError(f"{name} is required")
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ValueError(f"{name} must be a list")
        return [_from_json(item, v, name) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object")
        return {str(k): str(v) for k, v in value.items()}
    if annotation is Decimal:
        return parse_decimal(value, name)
    if annotation is datetime:
        return parse_time(value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation(value)
    if annotation is bytes:
        return base64.b64decode(value, validate=True)
    if annotation is int and not (isinstance(value, int) and not isinstance(value, bool)):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation is str and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    if annotation is bool and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def parse_decimal(value: Any, name: str = "value") -> Decimal:
    """An exact, finite Decimal from text or a number; a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def record_from_json(cls: type[Any], data: dict[str, Any], defaults: dict[str, Any] | None = None) -> Any:
    """Build a record of ``cls`` from a JSON object; raises InvalidInput naming the field."""
    if not isinstance(data, dict):
        raise InvalidInput(f"expected a JSON object, got {type(data).__name__}")
    hints = _field_types(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            raw = data[name]
        elif defaults and name in defaults:
            values[name] = defaults[name]
            continue
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        else:
            raise InvalidInput(f"missing field: {name}")
        try:
            if name == "envelope" and isinstance(raw, dict):
                values[name] = record_from_json(Envelope, raw)
            else:
                values[name] = _from_json(hints[name], raw, name)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{name}: {exc}") from None
    return cls(**values)
