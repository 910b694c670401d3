"""Market marks (pure): a symbol's trades in one slice of event time, as the paper ledger
fills against them; amounts stay integers of 1e-18 until the record is built.

The candle fold closes a symbol's slices with its windows (``domain.market.candles.ClosedSlice``,
once the symbol's clock less the grace has passed the slice's end), so a mark holds all of
the slice's trades however market.trades was fetched in runs: a live worker and a backtest
of the same trades send the same marks (same ids, same sizes), which the fills derive from.
The ledger's row keeps an account's recent marks in a compact form (``kept_columns``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Any

from domain.amounts import quantize
from domain.clock import from_micros, to_micros
from domain.ids import uuid5_in
from domain.market.candles import ClosedSlice
from schemas.records import Mark

_mark_uuid = uuid5_in(uuid.UUID("e2b7c9d4-1f3a-4c5e-8b6d-0a9f8e7d6c5b"))
PRODUCER = "agent.trading.marks"


@dataclass(slots=True)
class MarkSlice:
    """One symbol's trades in one slice: the last trade (by time, then id) and totals."""

    symbol: str
    slice_start_us: int
    time_us: int
    trade_id: int
    price: int
    size: int
    count: int


def slice_of(closed: ClosedSlice) -> MarkSlice:
    """The mark of a closed slice: its last trade (by time, then id), total size and count."""
    bar = closed.bar
    return MarkSlice(closed.symbol, bar.start_us, bar.close_time, bar.close_id, bar.close, bar.volume, bar.count)


def mark_id(mark: MarkSlice) -> str:
    """A mark's event id: from its content, so a batch read twice gives the same marks."""
    return _id(mark.symbol, mark.trade_id, mark.size)


def _id(symbol: str, trade_id: int, size_units: int) -> str:
    return _mark_uuid(f"{symbol}|{trade_id}|{size_units}")


def mark_record(mark: MarkSlice) -> Mark:
    """The Mark record of a slice (its id derives from the slice's content, so a batch
    read twice gives the same marks, which the ledger then ignores)."""
    event_id = mark_id(mark)
    at = from_micros(mark.time_us)
    return Mark(envelope=Mark.envelope_for(event_time=at, producer=PRODUCER, event_id=event_id),
                symbol=mark.symbol, price=Decimal(mark.price).scaleb(-18), size=Decimal(mark.size).scaleb(-18),
                trade_count=mark.count, last_trade_id=mark.trade_id, slice_start=from_micros(mark.slice_start_us))


def id_of(symbol: str, trade_id: int, size: Decimal) -> str:
    """The id ``mark_id`` gives the mark of ``symbol`` with this last trade and total size
    (a decimal of at most the contract's 18 places)."""
    return _id(symbol, trade_id, int(size.scaleb(18)))


_DERIVED: dict[str, tuple[str, int, Decimal]] = {}
"""Ids found to be ``id_of`` their mark, with what they derive from: a row written every
second checks each kept mark once, not at every write (a row keeps at most 10,000 marks)."""
_DERIVED_MAX = 50_000


def _is_derived(symbol: str, mark: Mark) -> bool:
    event_id = mark.envelope.event_id
    source = (symbol, mark.last_trade_id, mark.size)
    known = _DERIVED.get(event_id)
    if known is not None:
        return known == source
    if id_of(*source) != event_id:
        return False
    if len(_DERIVED) >= _DERIVED_MAX:
        _DERIVED.clear()
    _DERIVED[event_id] = source
    return True


def _amount(value: Decimal) -> str:
    """A decimal's text without trailing zeros (read back at the contract's 18 places)."""
    text = str(value)
    return text.rstrip("0").rstrip(".") if "." in text and "E" not in text else text


def _differences(values: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *values], values, strict=False)]


def kept_columns(symbol: str, recent: list[Mark]) -> dict[str, Any]:
    """A symbol's kept marks (event-time order) as the ledger's row holds them: what a
    decision uses of a mark and nothing more, column by column. "t" event times and "n"
    last trade ids as differences from the mark before (the first from 0), "p"/"s" price
    and size as decimal text without trailing zeros, "id" {index: event id} only for the
    marks whose id is not the one ``id_of`` derives. The envelope's origin, the slice and
    the trade count are left out: no decision reads them of a kept mark (the input being
    decided is its events' cause)."""
    columns: dict[str, Any] = {
        "t": _differences([to_micros(m.envelope.event_time) for m in recent]),
        "p": [_amount(m.price) for m in recent], "s": [_amount(m.size) for m in recent],
        "n": _differences([m.last_trade_id for m in recent])}
    ids = {str(n): m.envelope.event_id for n, m in enumerate(recent) if not _is_derived(symbol, m)}
    if ids:
        columns["id"] = ids
    return columns


def kept_marks(symbol: str, columns: dict[str, Any]) -> list[Mark]:
    """The kept marks of ``kept_columns`` as decided on: amounts at the contract's 18 places
    (as the codec decodes them), ids as they were; their origin (``PRODUCER``, ingested and
    sliced at their event time, one trade) is what no decision reads."""
    ids: dict[str, str] = columns.get("id", {})
    marks = []
    for n, (time_us, price, size, trade_id) in enumerate(zip(
            accumulate(columns["t"]), columns["p"], columns["s"], accumulate(columns["n"]), strict=True)):
        at, size_18 = from_micros(time_us), quantize(Decimal(size))
        envelope = Mark.envelope_for(event_time=at, producer=PRODUCER, ingest_time=at,
                                     event_id=ids.get(str(n)) or id_of(symbol, trade_id, size_18))
        marks.append(Mark(envelope=envelope, symbol=symbol, price=quantize(Decimal(price)), size=size_18,
                          trade_count=1, last_trade_id=trade_id, slice_start=at))
    return marks
