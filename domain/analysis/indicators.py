"""Streaming technical indicators for one (symbol, interval) candle series: a pure fold.

``apply_candle(state, candle, config)`` folds one closed candle and returns the new state and
the indicators as of that candle. The state holds only JSON-trivial values, so a table can
store ``state.to_row()`` and rebuild it with ``IndicatorState(**row)``.

Warm-up (candle numbers are 1-based; with the default config in brackets):

* EMA(n): seeded with the simple average of the first n closes, so it first appears on
  candle n (fast 12, slow 26); afterwards ``ema += 2/(n+1) * (close - ema)``.
* RSI(p): Wilder. Changes start on candle 2; the average gain/loss is the simple average
  of the first p changes, so RSI first appears on candle p+1 (15); afterwards
  ``avg = (avg*(p-1) + x)/p``. RSI = 100*gain/(gain+loss); 50 when both are 0 (flat).
* ATR(p): Wilder over true ranges max(high-low, |high-prev close|, |low-prev close|). The
  first candle has no previous close and gives no true range, so ATR first appears on
  candle p+1 (15), seeded with the simple average of the first p true ranges.
* Realised volatility: sample standard deviation of the last w log returns, first on
  candle w+1 (21).
* Volume z-score: (volume - mean) / sample stdev of the w volumes BEFORE this candle, first
  on candle w+1 (21); None whenever that stdev is 0.

A missing window (no trades) is not filled in: the next candle is simply the next step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from decimal import Decimal
from operator import attrgetter
from typing import Any

from domain.clock import to_micros
from schemas.records import Candle


@dataclass(frozen=True, slots=True, kw_only=True)
class IndicatorConfig:
    """Periods (in candles) of each indicator."""

    ema_fast: int = 12
    ema_slow: int = 26
    rsi_period: int = 14
    atr_period: int = 14
    volatility_window: int = 20
    volume_window: int = 20

    def __post_init__(self) -> None:
        periods = (self.ema_fast, self.ema_slow, self.rsi_period, self.atr_period)
        if min(periods) < 1 or min(self.volatility_window, self.volume_window) < 2:
            raise ValueError(f"indicator periods must be >= 1 and windows >= 2: {self}")


@dataclass(frozen=True, slots=True, kw_only=True)
class IndicatorState:
    """Everything needed to continue the indicators of one series (JSON-trivial fields).

    Seed sums are used only during warm-up; the Wilder averages and EMAs are None until
    seeded. Lists hold at most the configured window, oldest first.
    """

    symbol: str
    interval: str
    count: int
    """Candles applied so far."""
    last_window_start_us: int
    """window_start of the last applied candle, microseconds since the epoch (idempotence)."""
    last_window_end_us: int
    """window_end of the last applied candle (gap detection)."""
    last_close: float
    close_sum: float
    """Sum of the closes while the EMAs are seeding (the first max(fast, slow) candles)."""
    ema_fast: float | None
    ema_slow: float | None
    gain_sum: float
    loss_sum: float
    avg_gain: float | None
    avg_loss: float | None
    true_range_sum: float
    atr: float | None
    recent_returns: list[float]
    recent_volumes: list[float]
    realised_volatility: float | None
    """Realised volatility as of the last applied candle (the baseline for the next one)."""

    def to_row(self) -> dict[str, Any]:
        """The state as a JSON-ready dict: ``dataclasses.asdict`` without its deep copy of
        every value (~90 us a state, about a fifth of the analysis agent's time a candle)."""
        return {name: list(value) if isinstance(value, list) else value
                for name, value in zip(_STATE_FIELDS, _state_values(self), strict=True)}


_STATE_FIELDS = tuple(f.name for f in fields(IndicatorState))
_state_values = attrgetter(*_STATE_FIELDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Indicators:
    """Indicator values as of one candle; None while an indicator warms up."""

    ema_fast: float | None
    ema_slow: float | None
    rsi: float | None
    atr: float | None
    realised_volatility: float | None
    volume_zscore: float | None


def sample_stdev(values: list[float]) -> float:
    """Sample standard deviation (n-1 denominator) of at least two values."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _price(value: Decimal, name: str, candle: Candle) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{candle.symbol} {candle.interval} candle has {name} {value}, not a positive price")
    return number


def _other_config(what: str, after: int) -> ValueError:
    return ValueError(f"{what} is not seeded after {after} steps: the state was built with another "
                      "IndicatorConfig; rebuild it by replaying the candles")


def _ema(previous: float | None, count: int, close_sum: float, close: float, period: int) -> float | None:
    if count < period:
        return None
    if count == period:
        return close_sum / period
    if previous is None:
        raise _other_config(f"EMA({period})", count)
    return previous + 2.0 / (period + 1) * (close - previous)


def _wilder(average: float | None, seed_sum: float, value: float, steps: int, period: int) -> float | None:
    """Wilder average after ``steps`` values (the simple mean of the first ``period``)."""
    if steps < period:
        return None
    if steps == period:
        return seed_sum / period
    if average is None:
        raise _other_config(f"Wilder average({period})", steps)
    return (average * (period - 1) + value) / period


def _push(values: list[float], value: float, window: int) -> list[float]:
    return [*values[len(values) - window + 1:], value] if len(values) >= window else [*values, value]


def _empty(candle: Candle) -> IndicatorState:
    """The state of a series before its first candle (count 0; last_close unused)."""
    return IndicatorState(
        symbol=candle.symbol, interval=candle.interval, count=0,
        last_window_start_us=0, last_window_end_us=0, last_close=0.0, close_sum=0.0,
        ema_fast=None, ema_slow=None, gain_sum=0.0, loss_sum=0.0, avg_gain=None, avg_loss=None,
        true_range_sum=0.0, atr=None, recent_returns=[], recent_volumes=[], realised_volatility=None,
    )


def apply_candle(
    state: IndicatorState | None, candle: Candle, config: IndicatorConfig
) -> tuple[IndicatorState, Indicators | None]:
    """Fold one closed candle. A candle whose window_start is not after the last applied one
    (re-delivered or re-emitted) returns ``(state, None)`` unchanged.

    Raises ValueError for a candle of another series, a non-positive close or a bad volume."""
    if state is not None and (state.symbol, state.interval) != (candle.symbol, candle.interval):
        raise ValueError(f"candle {candle.symbol} {candle.interval} applied to the state of "
                         f"{state.symbol} {state.interval}")
    start_us = to_micros(candle.window_start)
    if state is not None and start_us <= state.last_window_start_us:
        return state, None
    close = _price(candle.close, "close", candle)
    volume = float(candle.volume)
    if not math.isfinite(volume) or volume < 0:
        raise ValueError(f"{candle.symbol} {candle.interval} candle has volume {candle.volume}")
    old = state if state is not None else _empty(candle)
    count = old.count + 1

    seeding = count <= max(config.ema_fast, config.ema_slow)
    close_sum = old.close_sum + close if seeding else old.close_sum
    ema_fast = _ema(old.ema_fast, count, close_sum, close, config.ema_fast)
    ema_slow = _ema(old.ema_slow, count, close_sum, close, config.ema_slow)

    gain_sum, loss_sum, avg_gain, avg_loss = old.gain_sum, old.loss_sum, old.avg_gain, old.avg_loss
    tr_sum, atr, returns = old.true_range_sum, old.atr, old.recent_returns
    if count > 1:  # changes, true ranges and returns need a previous close
        steps = count - 1
        prev = old.last_close
        change = close - prev
        gain, loss = max(change, 0.0), max(-change, 0.0)
        if steps <= config.rsi_period:
            gain_sum, loss_sum = gain_sum + gain, loss_sum + loss
        avg_gain = _wilder(avg_gain, gain_sum, gain, steps, config.rsi_period)
        avg_loss = _wilder(avg_loss, loss_sum, loss, steps, config.rsi_period)
        high, low = float(candle.high), float(candle.low)
        true_range = max(high - low, abs(high - prev), abs(low - prev))
        if steps <= config.atr_period:
            tr_sum += true_range
        atr = _wilder(atr, tr_sum, true_range, steps, config.atr_period)
        returns = _push(returns, math.log(close / prev), config.volatility_window)

    rsi = None
    if avg_gain is not None and avg_loss is not None:
        total = avg_gain + avg_loss
        rsi = 50.0 if total == 0 else min(100.0, 100.0 * (avg_gain / total))
    volatility = sample_stdev(returns) if len(returns) == config.volatility_window else None
    baseline = old.recent_volumes[-config.volume_window:]
    zscore = None
    if len(baseline) == config.volume_window:
        spread = sample_stdev(baseline)
        if spread > 0:
            zscore = (volume - math.fsum(baseline) / len(baseline)) / spread

    new_state = IndicatorState(
        symbol=candle.symbol, interval=candle.interval, count=count,
        last_window_start_us=start_us, last_window_end_us=to_micros(candle.window_end),
        last_close=close, close_sum=close_sum, ema_fast=ema_fast, ema_slow=ema_slow,
        gain_sum=gain_sum, loss_sum=loss_sum, avg_gain=avg_gain, avg_loss=avg_loss,
        true_range_sum=tr_sum, atr=atr, recent_returns=returns,
        recent_volumes=_push(old.recent_volumes, volume, config.volume_window),
        realised_volatility=volatility,
    )
    return new_state, Indicators(ema_fast=ema_fast, ema_slow=ema_slow, rsi=rsi, atr=atr,
                                 realised_volatility=volatility, volume_zscore=zscore)
