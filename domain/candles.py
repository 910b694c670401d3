"""Event-time OHLCV candles: a fold over one symbol's trades, exact and idempotent.

Amounts are integers in units of 1e-18 (the Avro decimal(38, 18) of the contract), so sums
are exact and a candle does not depend on the order its trades arrived in: open and close
are the trades with the smallest and largest (trade time, trade id), not the first and
last to arrive.

Time is the symbol's own event time. Its watermark is the largest trade time seen; the
close boundary is ``watermark - grace``. Windows that end at or before the boundary close
(their final candle is emitted once), and a trade older than the boundary is late: it is
reported, never applied. Lateness depends only on this symbol's earlier trades, which
live in the same table row as the offset of the last one applied, so a worker that
crashes and re-reads its input decides exactly as before.
"""

from __future__ import annotations

import uuid
from dataclasses import astuple, dataclass, field
from datetime import datetime
from decimal import Context, Decimal
from enum import Enum
from typing import Any

from domain.clock import from_micros
from domain.windows import WindowSpec
from schemas.records import Candle

UNITS = 10**18
"""Amount units per 1 (price, size): decimal(38, 18)."""

_CANDLE_NAMESPACE = uuid.UUID("5b0f3c3e-6a52-4c1e-9f4e-7c1d2b8e9a01")


@dataclass(frozen=True, slots=True)
class Tick:
    """The parts of a trade a candle needs, as integers (hot-path form of a Trade)."""

    symbol: str
    trade_id: int
    time_us: int
    price: int
    size: int
    buy: bool  # the taker bought


@dataclass(slots=True)
class Bar:
    """The running OHLCV of one window. ``quote`` is in units of 1e-36 (price x size)."""

    start_us: int
    end_us: int
    open_time: int
    open_id: int
    open: int
    close_time: int
    close_id: int
    close: int
    high: int
    low: int
    volume: int = 0
    quote: int = 0
    buy_volume: int = 0
    sell_volume: int = 0
    count: int = 0
    first_id: int = 0
    last_id: int = 0

    @classmethod
    def first(cls, start_us: int, end_us: int, tick: Tick) -> Bar:
        """A bar holding one trade."""
        bar = cls(start_us, end_us, tick.time_us, tick.trade_id, tick.price, tick.time_us,
                  tick.trade_id, tick.price, tick.price, tick.price,
                  first_id=tick.trade_id, last_id=tick.trade_id)
        bar.add_amounts(tick)
        return bar

    def add_amounts(self, tick: Tick) -> None:
        """Add a trade's volume, quote volume, side volume and count."""
        self.volume += tick.size
        self.quote += tick.price * tick.size
        if tick.buy:
            self.buy_volume += tick.size
        else:
            self.sell_volume += tick.size
        self.count += 1

    def add(self, tick: Tick) -> None:
        """Fold one more trade into the bar (order-independent)."""
        key = (tick.time_us, tick.trade_id)
        if key < (self.open_time, self.open_id):
            self.open_time, self.open_id, self.open = tick.time_us, tick.trade_id, tick.price
        if key > (self.close_time, self.close_id):
            self.close_time, self.close_id, self.close = tick.time_us, tick.trade_id, tick.price
        if tick.price > self.high:
            self.high = tick.price
        if tick.price < self.low:
            self.low = tick.price
        if tick.trade_id < self.first_id:
            self.first_id = tick.trade_id
        if tick.trade_id > self.last_id:
            self.last_id = tick.trade_id
        self.add_amounts(tick)

    @property
    def vwap(self) -> int:
        """Volume-weighted average price in 1e-18 units, rounded half-even."""
        return _round_units(self.quote, self.volume)


@dataclass(frozen=True, slots=True)
class ClosedCandle:
    """A final candle: symbol, window family and its bar."""

    symbol: str
    interval: str
    bar: Bar

    @property
    def candle_id(self) -> str:
        """Deterministic id, so consumers can de-duplicate re-emits."""
        return candle_id(self.symbol, self.interval, self.bar.start_us)


def candle_id(symbol: str, interval: str, start_us: int) -> str:
    """UUID5 of (symbol, interval, window start)."""
    return str(uuid.uuid5(_CANDLE_NAMESPACE, f"{symbol}|{interval}|{start_us}"))


class Outcome(Enum):
    """What happened to a trade."""

    APPLIED = "applied"
    LATE = "late"
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class SymbolCandles:
    """All open windows of one symbol, its event-time clock and the last source offset."""

    symbol: str
    watermark_us: int = -(2**62)
    boundary_us: int = -(2**62)  # windows ending at or before it are closed
    source_partition: int = -1
    source_offset: int = -1
    late: int = 0
    bars: dict[str, dict[int, Bar]] = field(default_factory=dict)


def apply_trade(state: SymbolCandles, tick: Tick, specs: tuple[WindowSpec, ...], grace_us: int,
                partition: int, offset: int) -> tuple[Outcome, list[ClosedCandle]]:
    """Fold one trade into its symbol's state (updated in place); the candles it closed."""
    if partition == state.source_partition and offset <= state.source_offset:
        return Outcome.DUPLICATE, []
    state.source_partition, state.source_offset = partition, offset
    if tick.time_us < state.boundary_us:
        state.late += 1
        return Outcome.LATE, []
    for spec in specs:
        bars = state.bars.get(spec.name)
        if bars is None:
            bars = state.bars[spec.name] = {}
        for start in spec.starts_for(tick.time_us):
            bar = bars.get(start)
            if bar is None:
                bars[start] = Bar.first(start, start + spec.size_us, tick)
            else:
                bar.add(tick)
    if tick.time_us > state.watermark_us:
        state.watermark_us = tick.time_us
        return Outcome.APPLIED, close_until(state, tick.time_us - grace_us)
    return Outcome.APPLIED, []


def close_until(state: SymbolCandles, boundary_us: int) -> list[ClosedCandle]:
    """Close every window ending at or before ``boundary_us``; the final candles in
    (interval, start) order."""
    if boundary_us <= state.boundary_us:
        return []
    state.boundary_us = boundary_us
    closed: list[ClosedCandle] = []
    for interval, bars in state.bars.items():
        done = [start for start, bar in bars.items() if bar.end_us <= boundary_us]
        for start in sorted(done):
            closed.append(ClosedCandle(state.symbol, interval, bars.pop(start)))
    return closed


def close_all(state: SymbolCandles) -> list[ClosedCandle]:
    """Close every open window (idle timeout): later trades inside them will be late."""
    ends = [bar.end_us for bars in state.bars.values() for bar in bars.values()]
    return close_until(state, max(ends)) if ends else []


def open_bars(state: SymbolCandles, interval: str) -> list[Bar]:
    """The live (not yet closed) windows of one interval, oldest first."""
    return [state.bars[interval][s] for s in sorted(state.bars.get(interval, {}))]


_EXACT = Context(prec=80)  # wide enough for any decimal(38, 18) amount: no rounding


def _amount(units: int, scale: int = 18) -> Decimal:
    return Decimal(units).scaleb(-scale, _EXACT)


def _round_units(value: int, divisor: int) -> int:
    quotient, remainder = divmod(value, divisor)
    twice = 2 * remainder
    if twice > divisor or (twice == divisor and quotient % 2):
        quotient += 1
    return quotient


def candle_record(closed: ClosedCandle, producer: str, ingest_time: datetime) -> Candle:
    """The Candle event of a final candle; its event id is the deterministic candle id.
    Quote volume is rounded half-even to the contract's 18 decimal places."""
    bar = closed.bar
    return Candle(
        envelope=Candle.envelope_for(
            event_time=from_micros(bar.end_us), producer=producer,
            event_id=closed.candle_id, ingest_time=ingest_time),
        symbol=closed.symbol,
        interval=closed.interval,
        window_start=from_micros(bar.start_us),
        window_end=from_micros(bar.end_us),
        open=_amount(bar.open), high=_amount(bar.high), low=_amount(bar.low),
        close=_amount(bar.close), volume=_amount(bar.volume),
        quote_volume=_amount(_round_units(bar.quote, UNITS)),
        vwap=_amount(bar.vwap), trade_count=bar.count,
        buy_volume=_amount(bar.buy_volume), sell_volume=_amount(bar.sell_volume),
        first_trade_id=bar.first_id, last_trade_id=bar.last_id,
    )


def to_row(state: SymbolCandles, updated_at_us: int) -> dict[str, Any]:
    """The state as a JSON-ready table row."""
    return {
        "symbol": state.symbol,
        "watermark_us": state.watermark_us,
        "boundary_us": state.boundary_us,
        "source_partition": state.source_partition,
        "source_offset": state.source_offset,
        "late": state.late,
        "updated_at_us": updated_at_us,
        # Amounts exceed 64 bits (1e-18 units), beyond what JSON libraries like orjson
        # take as numbers: each bar is one comma-separated string of its integers.
        "bars": {interval: [",".join(map(str, astuple(bar))) for bar in bars.values()]
                 for interval, bars in state.bars.items()},
    }


def from_row(row: dict[str, Any]) -> SymbolCandles:
    """The state of a table row."""
    return SymbolCandles(
        symbol=row["symbol"],
        watermark_us=row["watermark_us"],
        boundary_us=row["boundary_us"],
        source_partition=row["source_partition"],
        source_offset=row["source_offset"],
        late=row["late"],
        bars={interval: {bar.start_us: bar for bar in (Bar(*map(int, text.split(","))) for text in bars)}
              for interval, bars in row["bars"].items()},
    )


def live_candles(row: dict[str, Any], interval: str, now: datetime) -> list[Candle]:
    """The open (not yet final) windows of one interval in a row, oldest first."""
    state = from_row(row)
    return [candle_record(ClosedCandle(state.symbol, interval, bar), "live", now)
            for bar in open_bars(state, interval)]
