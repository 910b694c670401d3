"""Anomaly rules: a planted spike, volume burst and gap fire; a calm series stays stale."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import timedelta
from decimal import Decimal

from domain.analysis.anomalies import AnomalyRules, Finding, detect
from domain.analysis.indicators import IndicatorConfig, Indicators, IndicatorState, apply_candle
from schemas.records import Candle
from tests.factories import T0, make_candle

START = T0.replace(second=0, microsecond=0)
MINUTE = timedelta(minutes=1)
CONFIG = IndicatorConfig()


def candle(i: int, close: float, volume: float) -> Candle:
    """The i-th 1m candle of a BTCUSDT series."""
    price = Decimal(f"{close:.2f}")
    return make_candle(
        window_start=START + i * MINUTE, window_end=START + (i + 1) * MINUTE,
        open=price, high=price + 5, low=price - 5, close=price, volume=Decimal(f"{volume:.3f}"),
    )


def calm(n: int, seed: int = 3) -> list[Candle]:
    """Bounded moves (|return| <= 0.1%, well inside 4 sigma) and volumes of 40-60."""
    rng, price, out = random.Random(seed), 64000.0, []
    for i in range(n):
        price *= math.exp(rng.uniform(-0.001, 0.001))
        out.append(candle(i, price, rng.uniform(40.0, 60.0)))
    return out


def run(candles: list[Candle], rules: AnomalyRules | None = None) -> list[tuple[int, Finding]]:
    """Every finding of the series, with the index of the candle it fired on."""
    rules = rules or AnomalyRules()
    state: IndicatorState | None = None
    found = []
    for i, c in enumerate(candles):
        new_state, indicators = apply_candle(state, c, CONFIG)
        if indicators is not None:
            found += [(i, f) for f in detect(state, c, indicators, rules)]
        state = new_state
    return found


def last_findings(candles: list[Candle], rules: AnomalyRules) -> list[Finding]:
    """The findings on the last candle of the series."""
    return [f for i, f in run(candles, rules) if i == len(candles) - 1]


def test_calm_series_raises_nothing() -> None:
    assert run(calm(400)) == []


def test_price_spike_fires_return_sigma_once_against_the_volatility_before_it() -> None:
    series = calm(60)
    spike_close = float(series[-1].close) * 1.03
    series += [candle(60, spike_close, 50.0), candle(61, spike_close, 50.0)]
    found = run(series)
    assert [(i, f.rule) for i, f in found] == [(60, "return_sigma")]
    finding = found[0][1]
    assert finding.value > 10 and finding.threshold == 4.0
    assert finding.description.startswith("BTCUSDT 1m log return +2.96% is ")
    assert "(threshold 4\N{GREEK SMALL LETTER SIGMA})" in finding.description


def test_spike_during_warm_up_is_not_reported() -> None:
    series = calm(10)
    series.append(candle(10, float(series[-1].close) * 1.2, 50.0))  # no volatility known yet
    assert run(series) == []


def test_volume_burst_fires_volume_zscore() -> None:
    series = calm(40)
    series.append(candle(40, float(series[-1].close), 500.0))
    found = run(series)
    assert [(i, f.rule) for i, f in found] == [(40, "volume_zscore")]
    assert found[0][1].value > 20
    assert "volume 500.000 is" in found[0][1].description
    assert "previous 20 candles (threshold 4\N{GREEK SMALL LETTER SIGMA})" in found[0][1].description


def test_volume_drop_is_not_a_burst() -> None:
    series = calm(40)
    series.append(candle(40, float(series[-1].close), 0.001))
    assert run(series) == []


def test_gap_fires_with_the_missing_time_and_only_when_enabled() -> None:
    series = calm(30)
    series.append(candle(33, float(series[-1].close), 50.0))  # windows 30, 31, 32 had no trades
    found = run(series)
    assert [(i, f.rule, f.value, f.threshold) for i, f in found] == [(30, "gap", 180.0, 0.0)]
    assert found[0][1].description == (
        "BTCUSDT 1m gap: no candle from 2024-03-14T09:56:00Z to 2024-03-14T09:59:00Z (180s, 3 windows)"
    )
    assert run(series, AnomalyRules(gap_enabled=False)) == []


def test_one_microsecond_gap_fires_and_contiguous_candles_do_not() -> None:
    series = calm(30)
    last = series[-1]
    late = dataclasses.replace(candle(30, float(last.close), 50.0),
                               window_start=last.window_end + timedelta(microseconds=1))
    assert [f.rule for f in last_findings([*series, late], AnomalyRules())] == ["gap"]
    assert last_findings([*series, candle(30, float(last.close), 50.0)], AnomalyRules()) == []


def test_value_exactly_at_threshold_does_not_fire() -> None:
    base = calm(60)
    spike = [*base, candle(60, float(base[-1].close) * 1.03, 50.0)]
    burst = [*base, candle(60, float(base[-1].close), 500.0)]
    for rule, series in (("return_sigma", spike), ("volume_zscore", burst)):
        (observed,) = [f.value for f in last_findings(series, AnomalyRules(return_sigma_k=0, volume_zscore_k=0))
                       if f.rule == rule]
        at = AnomalyRules(return_sigma_k=observed, volume_zscore_k=observed)
        below = math.nextafter(observed, 0.0)
        just_below = AnomalyRules(return_sigma_k=below, volume_zscore_k=below)
        assert rule not in [f.rule for f in last_findings(series, at)]
        assert rule in [f.rule for f in last_findings(series, just_below)]


def test_redelivered_candle_raises_nothing() -> None:
    series = calm(30)
    series.append(candle(33, float(series[-1].close) * 1.05, 900.0))  # gap + spike + burst
    state: IndicatorState | None = None
    for c in series:
        state, _ = apply_candle(state, c, CONFIG)
    stale = Indicators(ema_fast=None, ema_slow=None, rsi=None, atr=None, realised_volatility=None,
                       volume_zscore=99.0)
    assert detect(state, series[-1], stale, AnomalyRules()) == []
    assert detect(None, series[0], stale, AnomalyRules()) == []
