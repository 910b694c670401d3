"""Parsers for Binance trade data: public-data CSV files and recorded websocket messages.

CSV layouts (https://data.binance.vision), with or without a header row:

- ``trades``: id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]
- ``aggTrades``: agg_trade_id, price, qty, first_trade_id, last_trade_id, time,
  is_buyer_maker[, is_best_match]

``time`` is epoch milliseconds or microseconds (Binance switched spot files to
microseconds in 2025), told apart per value. ``quote_qty`` and ``is_best_match`` are not
carried (quote_qty is price x qty). Websocket messages are ``trade`` or ``aggTrade``
events, raw or in the combined-stream envelope ``{"stream": .., "data": {..}}``.

Binance's ``is_buyer_maker`` / ``m`` is true when the buyer was the resting order, so the
taker sold: ``taker_side = SELL``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from domain.rules.fields import show
from schemas.records import Trade
from streams.errors import InvalidInput
from streams.ingest.parsed_rows import Row
from streams.ingest.validate import (
    parse_amount,
    parse_epoch,
    parse_id,
    row_from,
    taker_side,
)

TRADES_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker")
AGG_TRADES_COLUMNS = (
    "agg_trade_id", "price", "qty", "first_trade_id", "last_trade_id", "time", "is_buyer_maker",
)
OPTIONAL_COLUMN = "is_best_match"


# --- CSV ------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [cell.strip().strip('"') for cell in text.split(",")]


def _cells(text: str, columns: tuple[str, ...]) -> list[str]:
    cells = _split(text)
    expected = f"expected {len(columns)} or {len(columns) + 1} columns"
    if len(cells) < len(columns):
        missing = ", ".join(columns[len(cells):])
        raise ValueError(f"missing field(s): {missing} ({len(cells)} columns, {expected})")
    if len(cells) > len(columns) + 1:
        layout = ", ".join((*columns, OPTIONAL_COLUMN))
        raise ValueError(f"too many columns: {len(cells)}, {expected} ({layout})")
    return cells


def _is_number(cell: str) -> bool:
    try:
        return Decimal(cell).is_finite()
    except InvalidOperation:
        return False


def _is_header(text: str, columns: tuple[str, ...]) -> bool:
    """A first row whose first cell is not an integer and that holds no number at all.

    Requiring *no* numeric cell keeps a garbled first data row (``x1,64000.1,...``) from
    being skipped silently as a header: it is rejected like any other bad row.
    """
    cells = _split(text)
    if cells[0].lstrip("-").isdigit() or any(_is_number(cell) for cell in cells):
        return False
    first = cells[0].lower()
    if columns is TRADES_COLUMNS and "agg" in first:
        raise InvalidInput("the header names aggregate trades: use --format binance-aggtrades")
    if columns is AGG_TRADES_COLUMNS and first == "id":
        raise InvalidInput("the header names single trades: use --format binance-trades")
    return True


def _csv_rows(lines: Iterable[str], columns: tuple[str, ...],
              parse: Callable[[str], Trade]) -> Iterator[Row]:
    first = True
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if first:
            first = False
            text = text.lstrip("\ufeff")
            if _is_header(text, columns):
                continue
        yield row_from(number, text, parse)


def _trade_from_csv(text: str, *, symbol: str, venue: str, producer: str) -> Trade:
    cells = _cells(text, TRADES_COLUMNS)
    trade_id = parse_id("trade_id (id)", cells[0])
    price = parse_amount("price", cells[1])
    size = parse_amount("size (qty)", cells[2])
    trade_time = parse_epoch("trade_time (time)", cells[4])
    side = taker_side("taker_side (is_buyer_maker)", cells[5])
    return Trade(
        envelope=Trade.envelope_for(event_time=trade_time, producer=producer),
        venue=venue, symbol=symbol, trade_id=trade_id, price=price, size=size,
        taker_side=side, trade_time=trade_time,
    )


def _agg_trade_from_csv(text: str, *, symbol: str, venue: str, producer: str) -> Trade:
    cells = _cells(text, AGG_TRADES_COLUMNS)
    trade_id = parse_id("trade_id (agg_trade_id)", cells[0])
    price = parse_amount("price", cells[1])
    size = parse_amount("size (qty)", cells[2])
    first_id = parse_id("first_trade_id", cells[3])
    last_id = parse_id("last_trade_id", cells[4])
    trade_time = parse_epoch("trade_time (time)", cells[5])
    side = taker_side("taker_side (is_buyer_maker)", cells[6])
    return Trade(
        envelope=Trade.envelope_for(event_time=trade_time, producer=producer),
        venue=venue, symbol=symbol, trade_id=trade_id, price=price, size=size,
        taker_side=side, trade_time=trade_time, first_trade_id=first_id, last_trade_id=last_id,
    )


def parse_trades_csv(lines: Iterable[str], *, symbol: str, venue: str = "binance",
                     producer: str = "cli.produce") -> Iterator[Row]:
    """Rows of a Binance ``trades`` CSV (lines of text, numbered from 1)."""
    parse = partial(_trade_from_csv, symbol=symbol, venue=venue, producer=producer)
    return _csv_rows(lines, TRADES_COLUMNS, parse)


def parse_aggtrades_csv(lines: Iterable[str], *, symbol: str, venue: str = "binance",
                        producer: str = "cli.produce") -> Iterator[Row]:
    """Rows of a Binance ``aggTrades`` CSV; trade_id is the aggregate id."""
    parse = partial(_agg_trade_from_csv, symbol=symbol, venue=venue, producer=producer)
    return _csv_rows(lines, AGG_TRADES_COLUMNS, parse)


# --- websocket messages ---------------------------------------------------------------


def load_json(text: str) -> Any:
    """A JSON value with exact decimals for non-integer numbers; ValueError if not JSON."""
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None


def _ws_trade(text: str, *, symbol: str | None, venue: str, producer: str) -> Trade:
    message = load_json(text)
    if isinstance(message, dict) and "stream" in message and isinstance(message.get("data"), dict):
        message = message["data"]
    if not isinstance(message, dict):
        raise ValueError(f"not a JSON object: {show(text)}")
    kind = message.get("e")
    if kind not in ("trade", "aggTrade"):
        detail = "no event type (e)" if kind is None else f"event type {show(kind)}"
        raise ValueError(f"not a trade message: {detail}")
    name = message.get("s")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"symbol (s) is missing or not text: {show(name)}")
    if symbol is not None and name.strip().upper() != symbol.strip().upper():
        raise ValueError(f"symbol {show(name)} is not the --symbol {symbol}")
    trade_type = message.get("X")
    if trade_type is not None and not isinstance(trade_type, str):
        raise ValueError(f"trade_type (X) is not text: {show(trade_type)}")
    aggregate = kind == "aggTrade"
    trade_id = parse_id("trade_id (a)" if aggregate else "trade_id (t)",
                        message.get("a" if aggregate else "t"))
    price = parse_amount("price (p)", message.get("p"))
    size = parse_amount("size (q)", message.get("q"))
    first_id = parse_id("first_trade_id (f)", message.get("f")) if aggregate else None
    last_id = parse_id("last_trade_id (l)", message.get("l")) if aggregate else None
    trade_time = parse_epoch("trade_time (T)", message.get("T"))
    side = taker_side("taker_side (m)", message.get("m"))
    return Trade(
        envelope=Trade.envelope_for(event_time=trade_time, producer=producer),
        venue=venue, symbol=name.strip(), trade_id=trade_id, price=price, size=size,
        taker_side=side, trade_time=trade_time, trade_type=trade_type,
        first_trade_id=first_id, last_trade_id=last_id,
    )


def parse_ws(lines: Iterable[str], *, symbol: str | None = None, venue: str = "binance",
             producer: str = "cli.produce") -> Iterator[Row]:
    """Rows of recorded websocket messages, one JSON message per line.

    Blank lines are skipped; any non-trade message is rejected naming its event type; with
    ``symbol`` set, a trade of another symbol is rejected (not filtered out silently).
    """
    parse = partial(_ws_trade, symbol=symbol, venue=venue, producer=producer)
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text:
            yield row_from(number, text, parse)
