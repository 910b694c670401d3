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

import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.enrich.assessment import RISK_FLAGS
from domain.rules.commands import command_rules, limit_problem
from domain.rules.fields import (
    ACCOUNT_RULE,
    ARGUMENT,
    ID_RULE,
    INTERVAL_RULE,
    MAX_AMOUNT_UNITS,
    MAX_LONG,
    MAX_SCALE,
    MAX_SYMBOL,
    MIN_TIME_US,
    NAME,
    NAME_RULE,
    SHORT_TEXT,
    SYMBOL,
    SYMBOL_RULE,
    TOPIC_RULE,
    URL_RULE,
    Rule,
    TimeBounds,
    Violation,
    amount,
    instant,
    integer,
    items,
    mapping,
    member,
    number,
    optional,
    show,
    text,
)
from domain.strategy.strategies import STRATEGIES
from schemas import records as r

# --- record rules ---------------------------------------------------------------------------

Fields = dict[str, Rule]


def _market_time(value: Any) -> str | None:
    """Where a rule says it: a market time, within the bounds of the check (``_check``)."""
    raise AssertionError("resolved by _check")


@functools.cache
def _envelope_rules() -> Fields:
    return {
        "event_id": ID_RULE, "event_type": text(64, pattern=NAME), "producer": SHORT_TEXT,
        "schema_version": integer(1, 1000), "correlation_id": optional(ID_RULE),
        "causation_id": optional(ID_RULE), "priority": member(r.Priority), "retry_count": integer(0, 1000),
        "event_time": _market_time, "ingest_time": instant(None),
    }


_RULES: dict[type[r.Event], Fields] = {}


def _record_rules(kind: type[r.Event]) -> Fields:
    """The rules of a record type's fields, made once (callers do not change them)."""
    rules = _RULES.get(kind)
    if rules is None:
        rules = _RULES[kind] = _rules_of(kind)
    return rules


def _rules_of(kind: type[r.Event]) -> Fields:
    at = _market_time
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
                "url": optional(URL_RULE), "published_time": at}
    if kind is r.Candle:
        return {"symbol": SYMBOL_RULE, "interval": INTERVAL_RULE, "window_start": at, "window_end": instant(None),
                **dict.fromkeys(("open", "high", "low", "close", "vwap"), amount()),
                **dict.fromkeys(("volume", "quote_volume", "buy_volume", "sell_volume"), amount(positive=False)),
                "trade_count": integer(), "first_trade_id": integer(), "last_trade_id": integer()}
    if kind is r.IndicatorSnapshot:
        return {"symbol": SYMBOL_RULE, "interval": INTERVAL_RULE, "candle_id": ID_RULE, "candle_end": at,
                "close": amount(), "ema_fast": optional_finite, "ema_slow": optional_finite,
                "rsi": optional(number(0, 100)), "atr": optional(number(0)),
                "realised_volatility": optional(number(0)), "volume_zscore": optional_finite,
                "anomaly_ids": items(ID_RULE, 32)}
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
                "latency_ms": number(0), "source": member(r.EnrichmentSource),
                "fallback_reason": optional(text(64, pattern=NAME))}
    if kind is r.TradeSignal:
        return {"symbol": SYMBOL_RULE, "side": member(r.Side), "strength": finite,
                "strategy": text(64, pattern=NAME), "reason": text(2000), "cause_ids": items(ID_RULE, 64)}
    if kind is r.PlaceOrder:
        return {"order_id": ID_RULE, "account": ACCOUNT_RULE, "symbol": SYMBOL_RULE, "side": member(r.Side),
                "order_type": member(r.OrderType), "quantity": amount(), "limit_price": optional(amount()),
                "signal_id": optional(ID_RULE), "expires_at": optional(instant(None)),
                "strategy": _strategy_or_none}
    if kind is r.Mark:
        return {"symbol": SYMBOL_RULE, "price": amount(), "size": amount(), "trade_count": integer(1),
                "last_trade_id": integer(), "slice_start": at}
    if kind is r.ExpireOrders:
        return {"account": ACCOUNT_RULE}
    if kind is r.StrategyProgressed:
        return {"account": ACCOUNT_RULE, "symbol": SYMBOL_RULE, "strategy": text(64, pattern=NAME)}
    if kind in (r.OrderDenied, r.OrderCanceled, r.OrderExpired):
        order = {"order_id": ID_RULE, "account": ACCOUNT_RULE, "symbol": SYMBOL_RULE,
                 "remaining_quantity": amount(positive=False)}
        if kind is r.OrderExpired:
            return {**order, "filled_quantity": amount(positive=False), "deadline": instant(None)}
        del order["remaining_quantity"]
        return {**order, "reason_code": text(64, pattern=NAME), "reason": text(2000),
                **({"command_id": ID_RULE, "remaining_quantity": amount(positive=False)}
                   if kind is r.OrderCanceled else {})}
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
    if command_rules(kind):
        return command_rules(kind)
    return {}


def _strategy_or_none(value: Any) -> str | None:
    """A known strategy, or '' (an order no strategy placed, e.g. a flatten)."""
    if value == "" or (isinstance(value, str) and value in STRATEGIES):
        return None
    return f"is not a strategy ({', '.join(STRATEGIES)}) or empty: {show(value)}"


def violations(event: r.Event, bounds: TimeBounds | None) -> list[Violation]:
    """Everything wrong with ``event``, one violation per field; empty when it is valid.
    ``bounds`` limits event times (None: any aware time, e.g. for internal records)."""
    at = instant(bounds)
    found = _check(event.envelope, _envelope_rules(), at, prefix="envelope.")
    found += _check(event, _record_rules(type(event)), at)
    found += _consistency(event)
    return found


def first_violation(event: r.Event, bounds: TimeBounds | None) -> Violation | None:
    """The first thing wrong with ``event``, or None."""
    found = violations(event, bounds)
    return found[0] if found else None


def _check(record: Any, rules: Fields, at: Rule, prefix: str = "") -> list[Violation]:
    """The violations of ``record``'s fields, with ``at`` the rule of its market times."""
    found = []
    for name, rule in rules.items():
        problem = (at if rule is _market_time else rule)(getattr(record, name, None))
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
    elif isinstance(event, r.Mark):
        if _ordered(event.slice_start, event.envelope.event_time) is False \
                and event.slice_start != event.envelope.event_time:
            found.append(Violation("slice_start", "is after the mark's event_time"))
    elif isinstance(event, r.SetRiskLimit) and isinstance(event.limit, str) and _all_decimal(event.value):
        problem = limit_problem(event.limit, event.value)
        if problem is not None:
            found.append(Violation("value", problem))
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


_RAW_TRADE_RULES: tuple[tuple[str, Rule], ...] = tuple(
    (name, rule) for name, rule in _record_rules(r.Trade).items()
    if name in ("venue", "trade_type", "first_trade_id", "last_trade_id"))
"""Trade fields whose plain Avro value is their typed value (the tick covers the others)."""
_RAW_ENVELOPE_RULES: tuple[tuple[str, Rule], ...] = tuple(
    (name, rule) for name, rule in _envelope_rules().items()
    if name not in ("event_time", "ingest_time", "priority"))
_MIN_DATETIME_US = int(datetime(1, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
_MAX_DATETIME_US = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 1_000_000


def raw_trade_violation(record: dict[str, Any], price_units: int, size_units: int,
                        bounds: TimeBounds) -> Violation | None:
    """The whole Trade rule on a plain Avro Trade (times in us, amounts as 1e-18 units), as
    the hot path decodes it: the same answer ``violations`` gives for the typed Trade."""
    found = tick_violation(record["symbol"], record["trade_id"], record["trade_time"], price_units, size_units,
                           bounds)
    if found is not None or _plainly_valid(record, bounds):
        return found
    return _rule_violation(record, bounds)


def _rule_violation(record: dict[str, Any], bounds: TimeBounds) -> Violation | None:
    """The fields a tick does not cover, through the Trade's field rules."""
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


def _plainly_valid(record: dict[str, Any], bounds: TimeBounds) -> bool:
    """The common case decided quickly (what the rules above accept, never more): the
    fields the tick does not cover are short, set and in bounds. False: let the rules say."""
    envelope = record["envelope"]
    first, last = record.get("first_trade_id"), record.get("last_trade_id")
    event_time, ingest_time = envelope.get("event_time"), envelope.get("ingest_time")
    correlation, causation = envelope.get("correlation_id"), envelope.get("causation_id")
    return (_short(record.get("venue"), 32) and (record.get("trade_type") is None or _short(record["trade_type"], 32))
            and (first is None or 0 <= first <= MAX_LONG) and (last is None or 0 <= last <= MAX_LONG)
            and (first is None or last is None or first <= last)
            and _short(envelope.get("event_id"), 256) and _short(envelope.get("producer"), 128)
            and _short(envelope.get("event_type"), 64) and _event_type_ok(envelope["event_type"])
            and 1 <= envelope.get("schema_version", 0) <= 1000 and 0 <= envelope.get("retry_count", -1) <= 1000
            and (correlation is None or _short(correlation, 256)) and (causation is None or _short(causation, 256))
            and isinstance(event_time, int) and MIN_TIME_US <= event_time <= bounds.latest_us
            and isinstance(ingest_time, int) and _MIN_DATETIME_US <= ingest_time <= _MAX_DATETIME_US)


def _short(value: Any, max_len: int) -> bool:
    """Text of 1..max_len characters, not blank (the ``text`` rule without a pattern)."""
    return isinstance(value, str) and 0 < len(value) <= max_len and not value.isspace()


@functools.lru_cache(maxsize=64)
def _event_type_ok(value: str) -> bool:
    return _envelope_rules()["event_type"](value) is None
