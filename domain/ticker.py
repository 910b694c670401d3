"""Per-symbol ticker: a fold over trades, idempotent under re-delivery."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from schemas.records import Trade


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticker:
    """Running statistics of one symbol's trades and the last source record applied."""

    symbol: str
    last_price: Decimal
    last_trade_id: int
    last_trade_time: datetime
    high: Decimal
    low: Decimal
    trade_count: int
    volume: Decimal
    source_partition: int
    source_offset: int


def apply_trade(state: Ticker | None, trade: Trade, partition: int, offset: int) -> Ticker:
    """Fold one trade into the ticker. A record at or before the last applied offset of
    the same partition is a re-delivery and leaves the state unchanged. An out-of-order
    trade counts, but does not replace a newer last price."""
    if state is None:
        return Ticker(
            symbol=trade.symbol, last_price=trade.price, last_trade_id=trade.trade_id,
            last_trade_time=trade.trade_time, high=trade.price, low=trade.price,
            trade_count=1, volume=trade.size, source_partition=partition, source_offset=offset,
        )
    if partition == state.source_partition and offset <= state.source_offset:
        return state
    newer = trade.trade_time >= state.last_trade_time
    return replace(
        state,
        last_price=trade.price if newer else state.last_price,
        last_trade_id=trade.trade_id if newer else state.last_trade_id,
        last_trade_time=trade.trade_time if newer else state.last_trade_time,
        high=max(state.high, trade.price),
        low=min(state.low, trade.price),
        trade_count=state.trade_count + 1,
        volume=state.volume + trade.size,
        source_partition=partition,
        source_offset=offset,
    )
