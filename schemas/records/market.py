"""Market data records (schemas/market/*.avsc): nouns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from schemas.records.common import Event, Side


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.market.Trade"
    SCHEMA_VERSION: ClassVar[int] = 2
    venue: str
    symbol: str
    trade_id: int
    price: Decimal
    size: Decimal
    taker_side: Side
    trade_time: datetime
    trade_type: str | None = None
    first_trade_id: int | None = None
    last_trade_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BookTop(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.market.BookTop"
    venue: str
    symbol: str
    bid_price: Decimal
    bid_size: Decimal
    ask_price: Decimal
    ask_size: Decimal
    update_id: int | None = None
    quote_time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class News(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.market.News"
    headline: str
    source: str
    symbols: list[str]
    url: str | None = None
    published_time: datetime
