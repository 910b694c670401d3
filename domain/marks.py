"""Market marks (pure): a symbol's trades in one slice of event time, as the paper ledger
fills against them; amounts stay integers of 1e-18 until the record is built.

The candle fold closes a symbol's slices with its windows (``domain.candles.ClosedSlice``,
once the symbol's clock less the grace has passed the slice's end), so a mark holds all of
the slice's trades however market.trades was fetched in runs: a live worker and a backtest
of the same trades send the same marks (same ids, same sizes), which the fills derive from."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from domain.candles import ClosedSlice
from domain.clock import from_micros
from domain.ids import uuid5
from schemas.records import Mark

_NAMESPACE = uuid.UUID("e2b7c9d4-1f3a-4c5e-8b6d-0a9f8e7d6c5b")
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
    return uuid5(_NAMESPACE, f"{mark.symbol}|{mark.trade_id}|{mark.size}")


def mark_record(mark: MarkSlice) -> Mark:
    """The Mark record of a slice (its id derives from the slice's content, so a batch
    read twice gives the same marks, which the ledger then ignores)."""
    event_id = mark_id(mark)
    at = from_micros(mark.time_us)
    return Mark(envelope=Mark.envelope_for(event_time=at, producer=PRODUCER, event_id=event_id),
                symbol=mark.symbol, price=Decimal(mark.price).scaleb(-18), size=Decimal(mark.size).scaleb(-18),
                trade_count=mark.count, last_trade_id=mark.trade_id, slice_start=from_micros(mark.slice_start_us))
