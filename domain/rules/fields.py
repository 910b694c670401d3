"""The building blocks of record validity: field rules (text, integer, amount, time,
enumeration, list, map), each a function of a value that returns what is wrong with it
or None, plus the bounds and patterns they use. ``domain/rules/validity.py`` assembles them
into the rule of each record type.

Every rule is bounded before it starts: lengths are checked before patterns, amounts are
compared as finite decimals or integers, and ``show`` displays any value in bounded work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

MIN_TIME_US = int(datetime(2009, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
"""No market event predates 2009 (the first Bitcoin block)."""
DEFAULT_MAX_FUTURE_SKEW_S = 300.0
"""How far past now an event time may be, unless configured (TICKTIDE_MAX_FUTURE_SKEW_S)."""
MAX_SCALE = 18
"""Decimal places an amount may have: the Avro ``decimal(38, 18)`` scale."""
MAX_INTEGER_DIGITS = 38 - MAX_SCALE
MAX_AMOUNT_UNITS = 10**38 - 1
"""Largest unscaled ``decimal(38, 18)`` amount (units of 1e-18)."""
MAX_AMOUNT_BYTES = 16
"""A ``decimal(38, 18)`` fits in 16 bytes of two's complement."""
MAX_LONG = 2**63 - 1
MAX_SYMBOL = 32
SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
"""A market symbol (BTCUSDT, BTC-PERP, ETH/USD): never the internal ``#...`` key space."""
ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]*")
"""Sources, components, workers, rules, strategies, topics."""
ARGUMENT = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing wrong with a record: the field and what is wrong with it."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field} {self.problem}"


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """Event times a record may carry: from 2009 to now plus the allowed clock skew."""

    now_us: int
    max_future_skew_us: int

    @property
    def latest_us(self) -> int:
        """The latest event time accepted."""
        return self.now_us + self.max_future_skew_us

    def problem(self, time_us: int) -> str | None:
        """Why ``time_us`` is out of bounds, or None."""
        if time_us < MIN_TIME_US:
            return f"is before 2009: {_show_time(time_us)}"
        if time_us > self.latest_us:
            return f"is in the future (more than {self.max_future_skew_us // 1_000_000} s ahead): " \
                   f"{_show_time(time_us)}"
        return None


def show(value: object, limit: int = 60) -> str:
    """``repr`` of a value for a reason, shortened if long; bounded work for any input."""
    if isinstance(value, str | bytes | list | tuple) and len(value) > limit:
        value = value[:limit]
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, Decimal):
        text = repr(format(value, "f")) if value.is_finite() and abs(value.adjusted()) < 100 else repr(str(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show_time(time_us: int) -> str:
    try:
        return datetime.fromtimestamp(time_us / 1_000_000, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{time_us} us since 1970"


def decimal_places(value: Decimal) -> int:
    """Digits after the decimal point as written (``1.50`` has 2)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


# --- field rules: each returns the problem or None -----------------------------------------

Rule = Callable[[Any], str | None]


def text(max_len: int, *, pattern: re.Pattern[str] | None = None, empty: bool = False) -> Rule:
    """A string of at most ``max_len`` characters (length checked before the pattern)."""

    def rule(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"is not text: {show(value)}"
        if not value.strip():
            return None if empty and not value else f"is empty: {show(value)}"
        if len(value) > max_len:
            return f"is longer than {max_len} characters: {show(value)}"
        if pattern is not None and not pattern.fullmatch(value):
            return f"does not match {pattern.pattern}: {show(value)}"
        return None

    return rule


def optional(inner: Rule) -> Rule:
    """None, or a value that passes ``inner``."""
    return lambda value: None if value is None else inner(value)


def integer(low: int = 0, high: int = MAX_LONG) -> Rule:
    """An int in [low, high]."""

    def rule(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"is not an integer: {show(value)}"
        if value < low:
            return f"is negative: {value}" if low == 0 else f"is below {low}: {value}"
        if value > high:
            return f"is above {high}: {show(value)}"
        return None

    return rule


def number(low: float = -math.inf, high: float = math.inf) -> Rule:
    """A finite float in [low, high]."""

    def rule(value: Any) -> str | None:
        if not isinstance(value, float | int) or isinstance(value, bool):
            return f"is not a number: {show(value)}"
        if not math.isfinite(value):
            return f"is not finite: {show(value)}"
        if not low <= value <= high:
            return f"is outside [{low:g}, {high:g}]: {show(value)}"
        return None

    return rule


def amount(*, positive: bool = True) -> Rule:
    """A finite Decimal that fits ``decimal(38, 18)``, > 0 (or >= 0)."""

    def rule(value: Any) -> str | None:
        if not isinstance(value, Decimal):
            return f"is not a decimal: {show(value)}"
        if not value.is_finite():
            return f"is not finite: {show(value)}"
        if value <= 0 if positive else value < 0:
            return f"is not positive: {show(value)}" if positive else f"is negative: {show(value)}"
        if decimal_places(value) > MAX_SCALE:
            return f"has more than {MAX_SCALE} decimal places: {show(value)}"
        if value.adjusted() >= MAX_INTEGER_DIGITS:
            return f"is too large for decimal(38, {MAX_SCALE}): {show(value)}"
        return None

    return rule


def instant(bounds: TimeBounds | None) -> Rule:
    """An aware datetime within ``bounds`` (any aware datetime when None)."""

    def rule(value: Any) -> str | None:
        if not isinstance(value, datetime):
            return f"is not a time: {show(value)}"
        if value.tzinfo is None:
            return f"has no timezone: {show(value)}"
        if bounds is None:
            return None
        return bounds.problem(int(value.timestamp() * 1_000_000))

    return rule


def member(kind: type[StrEnum]) -> Rule:
    """A member of an enum."""
    return lambda value: None if isinstance(value, kind) else f"is not one of {[m.value for m in kind]}: " \
                                                               f"{show(value)}"


def items(rule: Rule, max_items: int) -> Rule:
    """A list of at most ``max_items`` values, each passing ``rule``."""

    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"is not a list: {show(value)}"
        if len(value) > max_items:
            return f"has more than {max_items} items: {len(value)}"
        for index, item in enumerate(value):
            problem = rule(item)
            if problem is not None:
                return f"[{index}] {problem}"
        return None

    return check


def mapping(key: Rule, value: Rule, max_items: int) -> Rule:
    """A dict of at most ``max_items`` entries."""

    def check(found: Any) -> str | None:
        if not isinstance(found, dict):
            return f"is not a map: {show(found)}"
        if len(found) > max_items:
            return f"has more than {max_items} entries: {len(found)}"
        for name, item in found.items():
            problem = key(name)
            if problem is not None:
                return f"key {problem}"
            problem = value(item)
            if problem is not None:
                return f"[{show(name, 40)}] {problem}"
        return None

    return check


SYMBOL_RULE = text(MAX_SYMBOL, pattern=SYMBOL)
ACCOUNT_RULE = text(64, pattern=ACCOUNT)
NAME_RULE = text(128, pattern=NAME)
ID_RULE = text(256)
INTERVAL_RULE = text(16, pattern=re.compile(r"[0-9]+[a-z]+(/[0-9]+[a-z]+)?"))
TOPIC_RULE = text(249, pattern=re.compile(r"[A-Za-z0-9._-]+"))
URL_RULE = text(2048, pattern=re.compile(r"https?://\S+"))
SHORT_TEXT = text(128)
LONG_TEXT = text(4000)
