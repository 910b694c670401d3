"""What a valid record is: ranges, patterns and time bounds, once per record type (rule 5b).

Topics are shared with producers we do not control, so a record that decodes is not yet a
record we may fold. ``violations(event, bounds)`` lists everything wrong with an event of
any type; producers refuse to send such an event and agents dead-letter it (reason
``invalid_value``) before it can touch a table, a watermark or a window. The hot path
checks its integer ``Tick`` with ``tick_violation``, the same rule for a Trade.

Every check is bounded before it starts: lengths are checked before patterns, and amounts
are compared as integers or finite decimals, never converted from unbounded text.
Reasons name the field and show the value, e.g. ``price is not positive: '0'``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.enrich.assessment import RISK_FLAGS
from schemas import records as r

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
SHORT_TEXT = text(128)
LONG_TEXT = text(4000)


# --- record rules ---------------------------------------------------------------------------

Fields = dict[str, Rule]


def _envelope_rules(bounds: TimeBounds | None) -> Fields:
    return {
        "event_id": ID_RULE, "event_type": text(64, pattern=NAME), "producer": SHORT_TEXT,
        "schema_version": integer(1, 1000), "correlation_id": optional(ID_RULE),
        "causation_id": optional(ID_RULE), "priority": member(r.Priority), "retry_count": integer(0, 1000),
        "event_time": instant(bounds), "ingest_time": instant(None),
    }


def _record_rules(kind: type[r.Event], bounds: TimeBounds | None) -> Fields:
    at = instant(bounds)
    finite = number()
    optional_finite = optional(finite)
    if kind is r.Trade:
        return {"venue": text(32), "symbol": SYMBOL_RULE, "price": amount(), "size": amount(),
                "trade_id": integer(), "taker_side": member(r.Side), "trade_time": at,
                "trade_type": optional(text(32)), "first_trade_id": optional(integer()),
                "last_trade_id": optional(integer())}
    if kind is r.BookTop:
        return {"venue": text(32), "symbol": SYMBOL_RULE, "bid_price": amount(), "bid_size": amount(positive=False),
                "ask_price": amount(), "ask_size": amount(positive=False), "update_id": optional(integer()),
                "quote_time": at}
    if kind is r.News:
        return {"headline": text(1000), "source": text(100), "symbols": items(SYMBOL_RULE, 50),
                "url": optional(text(2048, pattern=re.compile(r"https?://\S+"))), "published_time": at}
    if kind is r.Candle:
        return {"symbol": SYMBOL_RULE, "interval": INTERVAL_RULE, "window_start": at, "window_end": instant(None),
                **dict.fromkeys(("open", "high", "low", "close", "vwap"), amount()),
                **dict.fromkeys(("volume", "quote_volume", "buy_volume", "sell_volume"), amount(positive=False)),
                "trade_count": integer(), "first_trade_id": integer(), "last_trade_id": integer()}
    if kind is r.IndicatorSnapshot:
        return {"symbol": SYMBOL_RULE, "interval": INTERVAL_RULE, "candle_id": ID_RULE, "candle_end": at,
                "close": amount(), "ema_fast": optional_finite, "ema_slow": optional_finite,
                "rsi": optional(number(0, 100)), "atr": optional(number(0)),
                "realised_volatility": optional(number(0)), "volume_zscore": optional_finite}
    if kind is r.Anomaly:
        return {"symbol": SYMBOL_RULE, "interval": INTERVAL_RULE, "rule": text(64, pattern=NAME),
                "value": finite, "threshold": finite, "candle_id": ID_RULE, "description": text(2000)}
    if kind is r.Enrichment:
        return {"subject_event_id": ID_RULE, "subject_type": text(64, pattern=NAME),
                "symbol": optional(SYMBOL_RULE), "regime": member(r.Regime), "sentiment": number(-1, 1),
                "risk_flags": items(lambda f: None if f in RISK_FLAGS else f"is not a known risk flag: {show(f)}",
                                    len(RISK_FLAGS)),
                "confidence": number(0, 1), "rationale": text(4000, empty=True), "model": SHORT_TEXT,
                "prompt_version": text(64), "input_tokens": integer(), "output_tokens": integer(),
                "latency_ms": number(0), "source": member(r.EnrichmentSource)}
    if kind is r.TradeSignal:
        return {"symbol": SYMBOL_RULE, "side": member(r.Side), "strength": finite,
                "strategy": text(64, pattern=NAME), "reason": text(2000), "cause_ids": items(ID_RULE, 64)}
    if kind is r.PlaceOrder:
        return {"order_id": ID_RULE, "account": ACCOUNT_RULE, "symbol": SYMBOL_RULE, "side": member(r.Side),
                "order_type": member(r.OrderType), "quantity": amount(), "limit_price": optional(amount()),
                "signal_id": optional(ID_RULE), "expires_at": optional(instant(None))}
    if kind is r.Heartbeat:
        return {"component": NAME_RULE, "worker_id": NAME_RULE, "host": text(255), "pid": integer(),
                "uptime_seconds": number(0), "events_processed": integer(), "sequence": integer(),
                "lifecycle": member(r.Lifecycle), "period_seconds": number(0, 86_400),
                "events_per_second": number(0), "errors": integer(), "last_event_time": optional(instant(None)),
                "lag": integer(), "latency_ms": items(number(0), 1000),
                "dependencies": mapping(text(64, pattern=NAME), text(64), 32)}
    if kind is r.ComponentStatus:
        return {"component": NAME_RULE, "worker_id": NAME_RULE, "status": member(r.HealthStatus),
                "detail": text(2000, empty=True), "lifecycle": member(r.Lifecycle)}
    if kind is r.DeadLetter:
        return {"source_topic": TOPIC_RULE, "source_partition": integer(0, 100_000), "source_offset": integer(),
                "agent": NAME_RULE, "reason": text(64, pattern=NAME), "error_type": SHORT_TEXT,
                "error_message": text(4000, empty=True), "attempt": integer(0, 1000)}
    if kind is r.UserCommand:
        return {"command": text(64, pattern=ARGUMENT), "target": optional(text(128)),
                "arguments": mapping(text(32, pattern=ARGUMENT), text(256, empty=True), 16),
                "user": SHORT_TEXT}
    if kind is r.TradeBatch:
        return {"source_topic": TOPIC_RULE, "source_partition": integer(0, 100_000),
                "follows_offset": integer(-1), "fetched_at": instant(None),
                "offsets": items(integer(), 100_000)}
    return {}


def violations(event: r.Event, bounds: TimeBounds | None) -> list[Violation]:
    """Everything wrong with ``event``, one violation per field; empty when it is valid.
    ``bounds`` limits event times (None: any aware time, e.g. for internal records)."""
    found = _check(event.envelope, _envelope_rules(bounds), prefix="envelope.")
    found += _check(event, _record_rules(type(event), bounds))
    found += _consistency(event)
    return found


def first_violation(event: r.Event, bounds: TimeBounds | None) -> Violation | None:
    """The first thing wrong with ``event``, or None."""
    found = violations(event, bounds)
    return found[0] if found else None


def _check(record: Any, rules: Fields, prefix: str = "") -> list[Violation]:
    found = []
    for name, rule in rules.items():
        problem = rule(getattr(record, name, None))
        if problem is not None:
            found.append(Violation(prefix + name, problem))
    return found


def _consistency(event: r.Event) -> list[Violation]:
    """Rules across fields (only once each field is valid on its own)."""
    found = []
    if isinstance(event, r.Trade):
        first, last = event.first_trade_id, event.last_trade_id
        if isinstance(first, int) and isinstance(last, int) and first > last:
            found.append(Violation("first_trade_id", f"{first} is after last_trade_id {last}"))
    elif isinstance(event, r.Candle):
        if _ordered(event.window_start, event.window_end) is False:
            found.append(Violation("window_end", "is not after window_start"))
        if _all_decimal(event.low, event.high, event.open, event.close) and not (
                event.low <= min(event.open, event.close) and max(event.open, event.close) <= event.high):
            found.append(Violation("high", "and low do not bound open and close"))
    elif isinstance(event, r.TradeBatch):
        lengths = {len(x) for x in (event.offsets, event.timestamps_ms, event.keys, event.values)
                   if isinstance(x, list)}
        offsets = event.offsets if isinstance(event.offsets, list) else []
        if len(lengths) != 1:
            found.append(Violation("offsets", "timestamps, keys and values differ in length"))
        elif offsets and isinstance(event.follows_offset, int) and (
                any(not isinstance(o, int) for o in offsets) or offsets[0] <= event.follows_offset
                or any(b <= a for a, b in itertools.pairwise(offsets))):
            found.append(Violation("offsets", "are not increasing after follows_offset"))
    return found


def _ordered(start: Any, end: Any) -> bool | None:
    if isinstance(start, datetime) and isinstance(end, datetime) and start.tzinfo and end.tzinfo:
        return start < end
    return None


def _all_decimal(*values: Any) -> bool:
    return all(isinstance(v, Decimal) and v.is_finite() for v in values)


# --- the hot path ---------------------------------------------------------------------------


def tick_violation(symbol: str, trade_id: int, time_us: int, price_units: int, size_units: int,
                   bounds: TimeBounds) -> Violation | None:
    """The Trade rule on a decoded tick's integers (amounts in 1e-18 units)."""
    if not (0 < len(symbol) <= MAX_SYMBOL and SYMBOL.fullmatch(symbol)):
        return Violation("symbol", SYMBOL_RULE(symbol) or "is invalid")
    if not 0 <= trade_id <= MAX_LONG:
        return Violation("trade_id", integer()(trade_id) or "is invalid")
    if not 0 < price_units <= MAX_AMOUNT_UNITS:
        return Violation("price", f"is not positive: {_units(price_units)}" if price_units <= 0
                         else f"is too large for decimal(38, {MAX_SCALE})")
    if not 0 < size_units <= MAX_AMOUNT_UNITS:
        return Violation("size", f"is not positive: {_units(size_units)}" if size_units <= 0
                         else f"is too large for decimal(38, {MAX_SCALE})")
    problem = bounds.problem(time_us)
    return Violation("trade_time", problem) if problem is not None else None


def record_time_violation(timestamp_ms: int, bounds: TimeBounds) -> Violation | None:
    """The Kafka record timestamp rule: within the same bounds as event times."""
    problem = bounds.problem(timestamp_ms * 1000)
    return Violation("timestamp", problem) if problem is not None else None


def _units(units: int) -> str:
    return show(Decimal(units).scaleb(-MAX_SCALE) if abs(units) < 10**60 else units)


def describe(found: Iterable[Violation]) -> str:
    """One line of every violation."""
    return "; ".join(str(v) for v in found)


_RAW_TRADE_RULES: tuple[tuple[str, Rule], ...] = tuple(
    (name, rule) for name, rule in _record_rules(r.Trade, None).items()
    if name in ("venue", "trade_type", "first_trade_id", "last_trade_id"))
"""Trade fields whose plain Avro value is their typed value (the tick covers the others)."""
_RAW_ENVELOPE_RULES: tuple[tuple[str, Rule], ...] = tuple(
    (name, rule) for name, rule in _envelope_rules(None).items()
    if name not in ("event_time", "ingest_time", "priority"))
_MIN_DATETIME_US = int(datetime(1, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_MAX_DATETIME_US = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 1_000_000


def raw_trade_violation(record: dict[str, Any], price_units: int, size_units: int,
                        bounds: TimeBounds) -> Violation | None:
    """The whole Trade rule on a plain Avro Trade (times in us, amounts as 1e-18 units), as
    the hot path decodes it: the same answer ``violations`` gives for the typed Trade."""
    found = tick_violation(record["symbol"], record["trade_id"], record["trade_time"], price_units, size_units,
                           bounds)
    if found is not None:
        return found
    for name, rule in _RAW_TRADE_RULES:
        problem = rule(record.get(name))
        if problem is not None:
            return Violation(name, problem)
    first, last = record.get("first_trade_id"), record.get("last_trade_id")
    if first is not None and last is not None and first > last:
        return Violation("first_trade_id", f"{first} is after last_trade_id {last}")
    envelope = record["envelope"]
    for name, rule in _RAW_ENVELOPE_RULES:
        problem = rule(envelope.get(name))
        if problem is not None:
            return Violation(f"envelope.{name}", problem)
    problem = bounds.problem(envelope["event_time"])
    if problem is not None:
        return Violation("envelope.event_time", problem)
    if not _MIN_DATETIME_US <= envelope["ingest_time"] <= _MAX_DATETIME_US:
        return Violation("envelope.ingest_time", f"is not a time: {envelope['ingest_time']} us since 1970")
    return None
