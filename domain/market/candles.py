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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal

from domain.clock import from_micros
from domain.fold import NOTHING_APPLIED, Position
from domain.ids import uuid5_in
from domain.market.bars import Bar, Tick, round_units
from domain.market.windows import WindowSpec
from schemas.records import Candle

CANDLE_PRODUCER = "agent.market"
"""The producer of final candles (the market agent)."""
UNITS = 10**18
"""Amount units per 1 (price, size): decimal(38, 18)."""

_CANDLE_NAMESPACE = uuid.UUID("5b0f3c3e-6a52-4c1e-9f4e-7c1d2b8e9a01")
_candle_uuid = uuid5_in(_CANDLE_NAMESPACE)


@dataclass(slots=True)
class ClosedCandle:
    """A final candle: symbol, window family and its bar (one per window closed: not frozen,
    which would make it cost three times as much, see ``domain.market.bars.Tick``)."""

    symbol: str
    interval: str
    bar: Bar

    @property
    def candle_id(self) -> str:
        """Deterministic id, so consumers can de-duplicate re-emits."""
        return candle_id(self.symbol, self.interval, self.bar.start_us)


def candle_id(symbol: str, interval: str, start_us: int) -> str:
    """UUID5 of (symbol, interval, window start)."""
    return _candle_uuid(f"{symbol}|{interval}|{start_us}")


@dataclass(frozen=True, slots=True)
class Late:
    """Output of a trade older than its symbol's close boundary: reported, never applied."""

    tick: Tick


@dataclass(slots=True)
class ClosedSlice:
    """A closed slice of the mark step (what the paper ledger fills against): its bar, final
    like a candle's, so it holds the same trades however the input was split into runs."""

    symbol: str
    bar: Bar


Output = ClosedCandle | Late | ClosedSlice
_NOTHING: tuple[Output, ...] = ()


@dataclass(slots=True)
class SymbolCandles:
    """One symbol's open panes, its event-time clock and the input last applied.

    Windows are built from panes: a window family of step S keeps one bar per S-long slice
    of time (its pane), and a window is the merge of the panes it spans; a family whose step is
    a multiple of a finer one kept as long as its windows last is made of that step's panes
    (``pane_steps``). Each trade updates one pane per pane step (2 for the default 1s, 1m, 5m,
    5m/1m), not one bar per window holding it (8), and a pane is dropped once every window
    holding it is closed."""

    symbol: str
    watermark_us: int = -(2**62)
    boundary_us: int = -(2**62)  # windows ending at or before it are closed; older trades are late
    applied: Position = NOTHING_APPLIED
    late: int = 0
    panes: dict[int, dict[int, Bar]] = field(default_factory=dict)  # step (us) -> start (us) -> pane
    next_close_us: int = -(2**62)  # no window holding a pane ends before it, after boundary_us (derived)


def pane_steps(specs: Sequence[WindowSpec]) -> dict[str, int]:
    """The step of the panes each window family is made of (by its name): the largest finer
    step dividing its own whose own families keep their panes at least as long as its windows
    last anyway (5m windows from the 1m panes the 5m/1m windows keep for five minutes), else its
    own. One pane fewer to update per trade, and no pane is kept longer than before."""
    kept: dict[int, int] = {}  # a step -> the longest window of the families of that step
    for spec in specs:
        kept[spec.step_us] = max(kept.get(spec.step_us, 0), spec.size_us)
    return {spec.name: max((step for step, longest in kept.items()
                            if step < spec.step_us and spec.step_us % step == 0 and longest >= spec.size_us),
                           default=spec.step_us)
            for spec in specs}


class CandleFold:
    """The candle fold of one set of window families: ``evolve(state, tick)``."""

    def __init__(self, specs: tuple[WindowSpec, ...], grace_us: int, mark_step_us: int | None = None) -> None:
        self.specs = specs
        self.grace_us = grace_us
        self.mark_step_us = mark_step_us  # slices closed with the windows, as ClosedSlice (None: none)
        marks = {mark_step_us} if mark_step_us else set()
        self.pane_step = pane_steps(specs)  # a family's name -> the step of the panes it is made of
        self.steps = tuple(sorted(set(self.pane_step.values()) | marks))  # the pane steps
        self._specs_of = {step: tuple(s for s in specs if self.pane_step[s.name] == step) for step in self.steps}
        self._longest = {step: max((s.size_us for s in self._specs_of[step]), default=step) for step in self.steps}

    def evolve(self, state: SymbolCandles, tick: Tick) -> tuple[SymbolCandles, Sequence[Output]]:
        """Fold one trade into its symbol's state (updated in place): the state, and the final
        candles it closed or ``Late`` if it came after its windows closed."""
        time_us = tick.time_us
        if time_us < state.boundary_us:
            state.late += 1
            return state, (Late(tick),)
        panes = state.panes
        for step in self.steps:
            bucket = panes.get(step)
            if bucket is None:
                bucket = panes[step] = {}
            start = time_us - time_us % step
            bar = bucket.get(start)
            if bar is None:
                end = start + step  # the first window holding the new pane ends with it
                bucket[start] = Bar.first(start, end, tick)
                if end < state.next_close_us:
                    state.next_close_us = end
            else:
                bar.add(tick)
        if time_us > state.watermark_us:
            state.watermark_us = time_us
            boundary = time_us - self.grace_us
            if boundary >= state.next_close_us:
                return state, self.close_until(state, boundary)
            if boundary > state.boundary_us:
                state.boundary_us = boundary  # no window ends in between: nothing to close
        return state, _NOTHING

    def close_until(self, state: SymbolCandles, boundary_us: int) -> list[ClosedCandle | ClosedSlice]:
        """Close every window ending at or before ``boundary_us``; the final candles in
        (window family, start) order, then the closed mark slices in time order."""
        previous = state.boundary_us
        if boundary_us <= previous:
            return []
        state.boundary_us = boundary_us
        # window ends are multiples of their step: the steps with an end in (previous, boundary]
        ended = [step for step in self.steps if previous - previous % step + step <= boundary_us]
        if not ended:
            state.next_close_us = self.next_close(boundary_us, state.panes)
            return []
        all_panes = state.panes
        symbol = state.symbol
        ending_of: dict[int, list[int]] = {}  # step -> its panes that end in (previous, boundary], in order
        for step in ended:
            panes = all_panes.get(step)
            if panes:
                ending = [s for s in panes if previous < s + step <= boundary_us]
                ending.sort()
                ending_of[step] = ending
        closed: list[ClosedCandle | ClosedSlice] = []
        pane_step = self.pane_step
        specs = (self._specs_of[ended[0]] if len(ended) == 1
                 else [s for s in self.specs if pane_step[s.name] in ended])
        for spec in specs:  # most closes end only the smallest step's windows (a second)
            step = pane_step[spec.name]
            if step not in ending_of:
                continue  # no panes
            panes = all_panes[step]
            if spec.size_us == step:  # a window is its one pane (closed, it no longer changes)
                closed += [ClosedCandle(symbol, spec.name, panes[start]) for start in ending_of[step]]
            else:
                closed += [ClosedCandle(symbol, spec.name, bar)
                           for bar in self._closing(panes, spec, step, previous, boundary_us)]
        mark_step = self.mark_step_us
        if mark_step in ending_of:
            slices = all_panes[mark_step]
            closed += [ClosedSlice(symbol, slices[start]) for start in ending_of[mark_step]]
        for step in ending_of:  # a pane goes once every window holding it is closed
            panes = all_panes[step]
            longest = self._longest[step]
            for start in [s for s in panes if s + longest <= boundary_us]:
                del panes[start]
        state.next_close_us = self.next_close(boundary_us, all_panes)
        return closed

    @staticmethod
    def _closing(panes: dict[int, Bar], spec: WindowSpec, pane_step: int, previous: int,
                 boundary_us: int) -> list[Bar]:
        """The bars of a family's windows made of several panes that end in (previous, boundary]
        and hold a pane, oldest first. Window ends are multiples of the step: usually one ends."""
        size, step = spec.size_us, spec.step_us
        ends: Sequence[int] = range(previous - previous % step + step, boundary_us + 1, step)
        if len(ends) > len(panes) * (size // step):  # a long quiet: fewer windows hold a pane than end
            starts = {start for pane in panes for start in spec.starts_for(pane)}
            ends = sorted(s + size for s in starts if previous < s + size <= boundary_us)
        bars = []
        for end in ends:
            parts = [panes[s] for s in range(end - size, end, pane_step) if s in panes]
            if parts:
                bars.append(Bar.merged(end - size, end, parts))
        return bars

    def close_quiet(self, state: SymbolCandles, quiet_us: int) -> list[ClosedCandle | ClosedSlice]:
        """A symbol without a trade for ``quiet_us`` of wall time: its clock runs on from its
        newest trade by as much, and the windows that have ended on it (grace included)
        close, as a trade at that time would close them. Windows still open stay open, so a
        later trade inside them counts: live, a window closes when its end has passed."""
        boundary = state.watermark_us + quiet_us - self.grace_us
        if boundary >= state.next_close_us:
            return self.close_until(state, boundary)
        state.boundary_us = max(state.boundary_us, boundary)  # no window with trades ends in between
        return []

    def close_all(self, state: SymbolCandles) -> list[ClosedCandle | ClosedSlice]:
        """Close every open window (the end of a recording or a backtest): later trades
        inside them will be late."""
        ends = [start + self._longest.get(step, step) for step, panes in state.panes.items() for start in panes]
        return self.close_until(state, max(ends)) if ends else []

    def open_bars(self, state: SymbolCandles, interval: str) -> list[Bar]:
        """The live (not yet closed) windows of one window family, oldest first."""
        spec = next((s for s in self.specs if s.name == interval), None)
        if spec is None:
            return []
        step = self.pane_step[spec.name]
        panes = state.panes.get(step)
        if not panes:
            return []
        starts = {start for pane in panes for start in spec.starts_for(pane)}
        return [self._window(panes, spec, step, start) for start in sorted(starts)
                if start + spec.size_us > state.boundary_us]

    @staticmethod
    def next_close(boundary_us: int, panes: dict[int, dict[int, Bar]]) -> int:
        """The first window end after ``boundary_us`` that can close a window with trades in
        it (``NEVER`` without panes). A window ends on a multiple of the step of its panes, so:
        the next multiple of each step that holds panes. A quiet symbol whose seconds have all
        closed is then not looked at again until its minute ends."""
        ends = [boundary_us - boundary_us % step + step for step, held in panes.items() if held]
        return min(ends) if ends else NEVER

    @staticmethod
    def _window(panes: dict[int, Bar], spec: WindowSpec, pane_step: int, start: int) -> Bar:
        parts = [panes[s] for s in range(start, start + spec.size_us, pane_step) if s in panes]
        return Bar.merged(start, start + spec.size_us, parts)


NEVER = 2**62
"""``next_close_us`` of a state without panes: no window of it can close."""
UNKNOWN = -(2**400)
"""``Bar.buy_quote`` of a bar from an old row: far below any sum of real amounts (< 2**260)."""
_MS_US = 1000
_EXACT = Context(prec=80)  # wide enough for any decimal(38, 18) amount: no rounding


def _amount(units: int, scale: int = 18) -> Decimal:
    return Decimal(units).scaleb(-scale, _EXACT)


def taker_buy_quote_units(bar: Bar) -> int | None:
    """The taker buys' quote volume in 1e-18 units (rounded half-even), None if unknown."""
    return None if bar.buy_quote < 0 else round_units(bar.buy_quote, UNITS)


def close_time_us(bar: Bar) -> int:
    """Binance's kline close time: the window's last millisecond."""
    return bar.end_us - _MS_US


def candle_record(closed: ClosedCandle, producer: str, ingest_time: datetime) -> Candle:
    """The Candle event of a final candle; its event id is the deterministic candle id.
    Quote volumes are rounded half-even to the contract's 18 decimal places."""
    bar = closed.bar
    buy_quote = taker_buy_quote_units(bar)
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
        quote_volume=_amount(round_units(bar.quote, UNITS)),
        vwap=_amount(bar.vwap), trade_count=bar.count,
        buy_volume=_amount(bar.buy_volume), sell_volume=_amount(bar.sell_volume),
        first_trade_id=bar.first_id, last_trade_id=bar.last_id,
        taker_buy_quote_volume=None if buy_quote is None else _amount(buy_quote),
        close_time=from_micros(close_time_us(bar)),
    )


def live_candles(state: SymbolCandles, fold: CandleFold, interval: str, now: datetime) -> list[Candle]:
    """The open (not yet final) windows of one window family, oldest first."""
    return [candle_record(ClosedCandle(state.symbol, interval, bar), "live", now)
            for bar in fold.open_bars(state, interval)]
