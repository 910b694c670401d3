"""Market marks (pure): a symbol's trades in one slice of event time, as the paper ledger
fills against them. Ticks in, marks out, per symbol and slice; amounts stay integers of
1e-18 until the record is built."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from domain.clock import from_micros
from domain.ids import uuid5
from schemas.records import Mark

_NAMESPACE = uuid.UUID("e2b7c9d4-1f3a-4c5e-8b6d-0a9f8e7d6c5b")
PRODUCER = "agent.trading.marks"


class TickLike(Protocol):
    """What a mark needs of a trade (the hot path's decoded tick has it)."""

    @property
    def symbol(self) -> str: ...
    @property
    def time_us(self) -> int: ...
    @property
    def trade_id(self) -> int: ...
    @property
    def price(self) -> int: ...  # 1e-18 units
    @property
    def size(self) -> int: ...  # 1e-18 units


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


def slice_marks(ticks: Iterable[TickLike], slice_us: int) -> list[MarkSlice]:
    """The marks of a run of ticks: one per symbol and ``slice_us`` slice of event time,
    in the order each (symbol, slice) first appears."""
    slices: dict[tuple[str, int], MarkSlice] = {}
    for tick in ticks:
        start = tick.time_us // slice_us * slice_us
        found = slices.get((tick.symbol, start))
        if found is None:
            slices[(tick.symbol, start)] = MarkSlice(tick.symbol, start, tick.time_us, tick.trade_id,
                                                     tick.price, tick.size, 1)
            continue
        if (tick.time_us, tick.trade_id) > (found.time_us, found.trade_id):
            found.time_us, found.trade_id, found.price = tick.time_us, tick.trade_id, tick.price
        found.size += tick.size
        found.count += 1
    return list(slices.values())


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
