"""The one rule for a valid Trade, and the cell parsers every input format shares.

Every reason names the field and shows the offending value, e.g.
``price is not a number: 'abc'``. Cell parsers raise ``ValueError`` with such a reason;
``row_from`` turns any of them, or any problem ``trade_problems`` finds, into a
``RejectedRow``, so a bad row never raises and is never dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from decimal import Context, Decimal, InvalidOperation

from domain.rules.fields import DEFAULT_MAX_FUTURE_SKEW_S, MAX_SCALE, TimeBounds, decimal_places, show
from domain.rules.validity import violations
from schemas.records import Side, Trade
from streams.errors import TickTideError
from streams.ingest.parsed_rows import ParsedRow, RejectedRow, Row
from streams.kafka.json_form import epoch_to_datetime
from streams.validation import bounds_now

MIN_EPOCH_MS = 10**11  # 1973-03-03: smaller values are not epoch milliseconds
MIN_EPOCH_US = 10**14  # from here on a value is epoch microseconds (also 1973)
MAX_EPOCH_US = 10**17  # year 5138
_WIDE = Context(prec=100)
_ONE = Decimal(1)


def fit_scale(value: Decimal) -> Decimal:
    """Drop trailing zeros beyond the 18th decimal place (exact); otherwise unchanged."""
    if decimal_places(value) <= MAX_SCALE or not value.is_finite():
        return value
    trimmed = value.normalize(_WIDE)
    if decimal_places(trimmed) > MAX_SCALE:
        return value
    exponent = trimmed.as_tuple().exponent
    return trimmed.quantize(_ONE, context=_WIDE) if isinstance(exponent, int) and exponent > 0 \
        else trimmed


def parse_amount(name: str, raw: object) -> Decimal:
    """A finite Decimal from a text cell or a JSON number."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError(f"{name} is missing")
    if isinstance(raw, Decimal):
        number = raw
    elif isinstance(raw, str | int | float) and not isinstance(raw, bool):
        try:
            number = Decimal(raw.strip() if isinstance(raw, str) else str(raw))
        except InvalidOperation:
            raise ValueError(f"{name} is not a number: {show(raw)}") from None
    else:
        raise ValueError(f"{name} is not a number: {show(raw)}")
    if not number.is_finite():
        raise ValueError(f"{name} is not finite: {show(raw)}")
    return fit_scale(number)


def parse_id(name: str, raw: object) -> int:
    """An integer id from a text cell or a JSON integer (sign checked later)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError(f"{name} is missing")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.lstrip("-").isdigit() and text.isascii():
            return int(text)
    raise ValueError(f"{name} is not an integer: {show(raw)}")


def parse_flag(name: str, raw: object) -> bool:
    """true/false, True/False, 1/0 (text or JSON)."""
    if isinstance(raw, bool):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError(f"{name} is missing")
    text = str(raw).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"{name} is not true or false: {show(raw)}")


def taker_side(name: str, buyer_is_maker: object) -> Side:
    """Binance's is_buyer_maker flag as the taker's side: buyer is maker => taker SOLD."""
    return Side.SELL if parse_flag(name, buyer_is_maker) else Side.BUY


def parse_epoch(name: str, raw: object) -> datetime:
    """Aware UTC time from epoch milliseconds or microseconds (told apart by magnitude)."""
    value = parse_id(name, raw)
    if not MIN_EPOCH_MS <= value < MAX_EPOCH_US:
        raise ValueError(f"{name} is not epoch milliseconds or microseconds: {show(raw)}")
    return epoch_to_datetime(value)


def trade_problems(trade: Trade, bounds: TimeBounds | None = None) -> list[str]:
    """Everything wrong with a trade (the one Trade rule, domain/rules/validity.py), one reason
    per problem; empty when it is valid. Times are bounded as of now unless ``bounds``."""
    return [str(v) for v in violations(trade, bounds or bounds_now(DEFAULT_MAX_FUTURE_SKEW_S))]


def _fitted(trade: Trade) -> Trade:
    price, size = fit_scale(trade.price), fit_scale(trade.size)
    if price is trade.price and size is trade.size:
        return trade
    return dataclasses.replace(trade, price=price, size=size)


def row_from(line: int, raw: str, parse: Callable[[str], Trade]) -> Row:
    """Parse one row's text and validate the trade: a ParsedRow or a RejectedRow."""
    try:
        trade = _fitted(parse(raw))
    except (ValueError, TypeError, ArithmeticError, TickTideError) as exc:
        return RejectedRow(line=line, reason=str(exc) or type(exc).__name__, raw=raw)
    problems = trade_problems(trade)
    if problems:
        return RejectedRow(line=line, reason="; ".join(problems), raw=raw)
    return ParsedRow(line=line, event=trade)
