"""Candle tables and the glue between rows and the pure fold.

* ``candles``: symbol -> the symbol's open windows, event-time clock and last source
  offset (a ``domain.candles.SymbolCandles`` as JSON); and, under ``#partition/<p>``,
  how far the fold has got in source partition p ({applied_through, batch_offset}), so a
  batch that does not follow on is noticed. The progress row lives in the same changelog
  partition as its symbols' rows and is written after them, so it is never ahead of them.
* ``candle_history``: symbol -> {interval: the last N final candles, oldest first}.

Both are keyed by symbol like market.trades, so a symbol's rows live in the partition of
its trades and a web query for it is routed to the worker that owns it. Rows are written
once per symbol per batch, inside ``partition_scope`` (streams/faust/internals.py). Names
and keys: tables/names.py.
"""

from __future__ import annotations

from typing import Any

from faust.types import TableT

from domain.candles import ClosedCandle, SymbolCandles, from_row
from schemas.records import Candle
from streams.faust.context import WorkerApp
from streams.faust.internals import partition_scope
from streams.kafka.json_form import event_to_json
from tables import names
from tables.names import progress_key
from tables.symbol_table import symbol_table

__all__ = ["declare", "load", "partition_scope", "progress_key", "remember_closed", "symbol_rows"]


def declare(app: WorkerApp) -> tuple[TableT[str, Any], TableT[str, Any]]:
    """The candle tables, co-partitioned with market.trades (and the trade-batch topic)."""
    return (symbol_table(app, names.CANDLES, "Open windows and event-time clock per symbol."),
            symbol_table(app, names.CANDLE_HISTORY, "Recent final candles per symbol and interval."))


def symbol_rows(table: TableT[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The symbols' rows (not the progress rows)."""
    return names.symbol_rows(table.items())


def load(table: TableT[str, Any], symbol: str) -> SymbolCandles:
    """The symbol's state (empty for a new symbol)."""
    row = table.get(symbol)
    return from_row(row) if row is not None else SymbolCandles(symbol)


def remember_closed(history: TableT[str, Any], closed: list[tuple[ClosedCandle, Candle]],
                    keep: int) -> None:
    """Append final candles to their symbol's history, keeping the last ``keep`` of each
    interval (a re-emitted candle replaces its earlier copy)."""
    by_symbol: dict[str, list[Candle]] = {}
    for _, candle in closed:
        by_symbol.setdefault(candle.symbol, []).append(candle)
    for symbol, candles in by_symbol.items():
        row: dict[str, list[dict[str, Any]]] = dict(history.get(symbol) or {})
        for candle in candles:
            shown = event_to_json(candle)
            series = [c for c in row.get(candle.interval, [])
                      if c["window_start"] != shown["window_start"]]
            series.append(shown)
            row[candle.interval] = series[-keep:]
        history[symbol] = row
