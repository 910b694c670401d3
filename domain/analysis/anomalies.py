"""Anomaly rules over one closed candle of a series: pure, no I/O.

``detect(previous, candle, indicators, rules)`` takes the state BEFORE ``apply_candle``
folded this candle, so that a spike is measured against the baseline it did not shape:

* return_sigma: the candle's log return vs the previous close, in units of the realised
  volatility as of the previous candle; fires when |return| / volatility > k (strictly),
  only once that volatility is known and > 0. The value is that multiple of sigma.
* volume_zscore: ``indicators.volume_zscore`` (already computed against the volumes
  before this candle); fires on bursts only, z > k (strictly). A drop never fires.
* gap: the candle starts after the previous candle's window_end, i.e. windows with no
  trades in between. The value is the missing time in seconds; the threshold is 0.

A candle that ``apply_candle`` would ignore (window_start not after the previous one)
gives no findings, and nor does the first candle of a series for return and gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.analysis.indicators import Indicators, IndicatorState
from domain.clock import from_micros, to_micros
from schemas.records import Candle

_SIGMA = "\N{GREEK SMALL LETTER SIGMA}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyRules:
    """Thresholds of each rule (in standard deviations) and whether gaps are reported."""

    return_sigma_k: float = 4.0
    volume_zscore_k: float = 4.0
    gap_enabled: bool = True


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired on a candle, with the measured value and its threshold."""

    rule: str
    """"return_sigma", "volume_zscore" or "gap"."""
    value: float
    threshold: float
    description: str


def _clock(micros: int) -> str:
    moment = from_micros(micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment.microsecond == 0 else moment.isoformat()


def _return_sigma(previous: IndicatorState, candle: Candle, k: float) -> Finding | None:
    volatility = previous.realised_volatility
    if volatility is None or volatility <= 0:
        return None
    log_return = math.log(float(candle.close) / previous.last_close)
    sigmas = abs(log_return) / volatility
    if not sigmas > k:
        return None
    return Finding(
        "return_sigma", sigmas, k,
        f"{candle.symbol} {candle.interval} log return {log_return:+.2%} is {sigmas:.1f}{_SIGMA} "
        f"of realised volatility {volatility:.4%} (threshold {k:g}{_SIGMA})",
    )


def _volume_zscore(previous: IndicatorState, candle: Candle, zscore: float | None, k: float) -> Finding | None:
    if zscore is None or not zscore > k:
        return None
    return Finding(
        "volume_zscore", zscore, k,
        f"{candle.symbol} {candle.interval} volume {candle.volume} is {zscore:.1f}{_SIGMA} above the mean of "
        f"the previous {len(previous.recent_volumes)} candles (threshold {k:g}{_SIGMA})",
    )


def _gap(previous: IndicatorState, candle: Candle) -> Finding | None:
    start_us = to_micros(candle.window_start)
    missing_us = start_us - previous.last_window_end_us
    if missing_us <= 0:
        return None
    length_us = to_micros(candle.window_end) - start_us
    windows = f", {missing_us / length_us:g} windows" if length_us > 0 else ""
    seconds = missing_us / 1_000_000
    return Finding(
        "gap", seconds, 0.0,
        f"{candle.symbol} {candle.interval} gap: no candle from {_clock(previous.last_window_end_us)} "
        f"to {_clock(start_us)} ({seconds:g}s{windows})",
    )


def detect(
    previous: IndicatorState | None, candle: Candle, indicators: Indicators, rules: AnomalyRules
) -> list[Finding]:
    """The rules that fire on ``candle``, given the series state from before it was applied."""
    if previous is None or to_micros(candle.window_start) <= previous.last_window_start_us:
        return []
    found = [
        _return_sigma(previous, candle, rules.return_sigma_k),
        _volume_zscore(previous, candle, indicators.volume_zscore, rules.volume_zscore_k),
        _gap(previous, candle) if rules.gap_enabled else None,
    ]
    return [finding for finding in found if finding is not None]
