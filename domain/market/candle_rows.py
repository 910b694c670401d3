"""The candle fold's table-row form: a symbol's state as a JSON-ready row, and back.

Amounts exceed 64 bits (1e-18 units), beyond what JSON libraries like orjson take as
numbers: each bar is one comma-separated string of its integers, in ``Bar``'s field order
(new fields are appended, so rows written by an older version still read).
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any

from domain.fold import Position
from domain.market.bars import Bar
from domain.market.candles import UNKNOWN, CandleFold, SymbolCandles


def to_row(state: SymbolCandles, updated_at_us: int) -> dict[str, Any]:
    """The state as a JSON-ready table row."""
    return {
        "symbol": state.symbol,
        "watermark_us": state.watermark_us,
        "boundary_us": state.boundary_us,
        "source_partition": state.applied.partition,
        "source_offset": state.applied.offset,
        "late": state.late,
        "updated_at_us": updated_at_us,
        # Amounts exceed 64 bits (1e-18 units), beyond what JSON libraries like orjson
        # take as numbers: each bar is one comma-separated string of its integers.
        "panes": {str(step): [bar_text(bar) for bar in panes.values()]
                  for step, panes in state.panes.items() if panes},
    }


def from_row(row: dict[str, Any], fold: CandleFold) -> SymbolCandles:
    """The state of a table row. Panes of a step the fold no longer has (the windows were
    reconfigured) are left out: no window of the fold would ever close or drop them. A row
    written before panes, whose "bars" are per window family, gives the panes of the families
    made of their own panes (1s and 1m with the default windows); the others' open windows
    (5m, 5m/1m) then hold what those panes hold."""
    if "panes" in row:
        panes = {int(step): _bars(texts) for step, texts in row["panes"].items() if int(step) in fold.steps}
    else:
        tumbling = {spec.name: spec.step_us for spec in fold.specs if spec.size_us == fold.pane_step[spec.name]}
        panes = {tumbling[name]: _bars(texts) for name, texts in row["bars"].items() if name in tumbling}
    boundary = row["boundary_us"]
    return SymbolCandles(
        symbol=row["symbol"],
        watermark_us=row["watermark_us"],
        boundary_us=boundary,
        applied=Position(row["source_partition"], row["source_offset"]),
        late=row["late"],
        panes=panes,
        next_close_us=fold.next_close(boundary, panes),
    )


_BAR_FIELDS = tuple(f.name for f in fields(Bar))
_bar_values = attrgetter(*_BAR_FIELDS)
_BAR_FORMAT = ",".join(["%d"] * len(_BAR_FIELDS))


def bar_text(bar: Bar) -> str:
    """A bar as one comma-separated string of its integers (the form rows keep it in): one
    C-level format, it is written for every final candle and every pane checkpointed."""
    return _BAR_FORMAT % _bar_values(bar)


def bar_from_text(text: str) -> Bar:
    """The bar of ``bar_text`` (a text from before ``buy_quote`` gives it ``UNKNOWN``)."""
    values = [*map(int, text.split(","))]
    if len(values) == len(_BAR_FIELDS) - 1:
        values.append(UNKNOWN)
    return Bar(*values)


def _bars(texts: list[str]) -> dict[int, Bar]:
    return {bar.start_us: bar for bar in map(bar_from_text, texts)}
