"""JSON lines of our own Trade schema, e.g. what ``ticktide consume market.trades`` prints.

Each line is an object with the Trade payload fields (``event_to_json`` form: decimals as
text or numbers, times ISO-8601 or epoch). An ``"envelope"`` object, when present, is
kept as it is (same event_id, so re-producing a consumed file keeps the ids); without
one a fresh envelope is built with event_time = trade_time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from domain.rules.fields import show
from schemas.records import Envelope, Trade
from streams.ingest.binance import load_json
from streams.ingest.parsed_rows import Row
from streams.ingest.validate import row_from
from streams.kafka.json_form import record_from_json

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PLACEHOLDER = Envelope(
    event_id="", event_type="Trade", event_time=_EPOCH, ingest_time=_EPOCH, producer="",
    schema_version=Trade.SCHEMA_VERSION,
)


def _jsonl_trade(text: str, *, symbol: str | None, venue: str, producer: str) -> Trade:
    data = load_json(text)
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object: {show(text)}")
    if data.get("envelope", ...) is None:
        data = {key: value for key, value in data.items() if key != "envelope"}
    defaults: dict[str, Any] = {"venue": venue, "envelope": _PLACEHOLDER}
    if symbol is not None:
        defaults["symbol"] = symbol
    try:
        trade: Trade = record_from_json(Trade, data, defaults)
    except OverflowError:
        raise ValueError(f"a time is out of range: {show(text)}") from None
    if symbol is not None and trade.symbol.strip().upper() != symbol.strip().upper():
        raise ValueError(f"symbol {show(trade.symbol)} is not the --symbol {symbol}")
    if "envelope" not in data:
        envelope = Trade.envelope_for(event_time=trade.trade_time, producer=producer)
        return dataclasses.replace(trade, envelope=envelope)
    if trade.envelope.event_type != "Trade":
        raise ValueError(f"envelope.event_type is {show(trade.envelope.event_type)}, not 'Trade'")
    return trade


def parse_jsonl(lines: Iterable[str], *, symbol: str | None = None, venue: str = "binance",
                producer: str = "cli.produce") -> Iterator[Row]:
    """Rows of a Trade JSON-lines file; blank lines are skipped.

    ``venue`` (and ``symbol``, if given) fill in a line that lacks the field; a line with
    another symbol than ``symbol`` is rejected.
    """
    parse = partial(_jsonl_trade, symbol=symbol, venue=venue, producer=producer)
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text:
            yield row_from(number, text, parse)
