"""The tickers table: symbol -> Ticker (stored as JSON), and the glue to the fold."""

from __future__ import annotations

from typing import Any, cast

from faust.types import TableT

from domain.ticker import Ticker, apply_trade
from schemas.records import Trade
from streams.app import TickTideApp
from streams.jsonio import event_to_json, record_from_json

NAME = "tickers"


def declare(app: TickTideApp) -> TableT[str, Any]:
    """The tickers table, co-partitioned with market.trades (key = symbol)."""
    if NAME in app.tables:
        return cast("TableT[str, Any]", app.tables[NAME])
    return app.Table(NAME, key_type=str, value_type=None,
                     partitions=app.settings.partitions,
                     help="Per-symbol last price, range, count and volume.")


def update(table: TableT[str, Any], trade: Trade, partition: int, offset: int) -> Ticker:
    """Apply one trade to its symbol's row (a no-op for a re-delivered record)."""
    stored = table.get(trade.symbol)
    state = record_from_json(Ticker, stored) if stored is not None else None
    new = apply_trade(state, trade, partition, offset)
    if new is not state:
        table[trade.symbol] = event_to_json(new)
    return new
