"""Streaming indicators vs independent whole-history references, warm-up, idempotence, JSON."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import statistics
from dataclasses import fields
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.analysis.indicators import IndicatorConfig, Indicators, IndicatorState, apply_candle
from schemas.records import Candle
from tests.factories import T0, make_candle

START = T0.replace(second=0, microsecond=0)
MINUTE = timedelta(minutes=1)
NAMES = [f.name for f in fields(Indicators)]


def candle(i: int, close: float, volume: float, *, high: float | None = None, low: float | None = None,
           open_: float | None = None) -> Candle:
    """The i-th 1m candle of the series (prices to the cent, volumes to 0.001)."""
    o = close if open_ is None else open_
    hi = max(o, close) if high is None else high
    lo = min(o, close) if low is None else low
    return make_candle(
        window_start=START + i * MINUTE, window_end=START + (i + 1) * MINUTE,
        open=Decimal(f"{o:.2f}"), high=Decimal(f"{hi:.2f}"), low=Decimal(f"{lo:.2f}"),
        close=Decimal(f"{close:.2f}"), volume=Decimal(f"{volume:.3f}"),
    )


def random_walk(n: int, seed: int = 7) -> list[Candle]:
    """Contiguous candles of a seeded geometric random walk with consistent high/low. The
    open jumps away from the previous close, so the range often misses that close and the
    true range is more than high - low."""
    rng = random.Random(seed)
    price, out = 64000.0, []
    for i in range(n):
        open_ = price * math.exp(rng.gauss(0.0, 0.002))
        close = open_ * math.exp(rng.gauss(0.0, 0.003))
        high = max(open_, close) + rng.uniform(0.0, 40.0)
        low = min(open_, close) - rng.uniform(0.0, 40.0)
        out.append(candle(i, close, rng.uniform(5.0, 120.0), high=high, low=low, open_=open_))
        price = float(f"{close:.2f}")
    return out


def fold(candles: list[Candle], config: IndicatorConfig, state: IndicatorState | None = None,
         ) -> tuple[IndicatorState | None, list[Indicators | None]]:
    results = []
    for c in candles:
        state, result = apply_candle(state, c, config)
        results.append(result)
    return state, results


# --- independent references: recomputed from the whole history, closed-form smoothing ---


def smoothed(values: list[float], period: int, alpha: float) -> float | None:
    """SMA of the first `period` values, then exponential smoothing, as one weighted sum."""
    if len(values) < period:
        return None
    rest = values[period:]
    seed = sum(values[:period]) / period
    m = len(rest)
    return (1 - alpha) ** m * seed + sum(alpha * (1 - alpha) ** (m - 1 - j) * v for j, v in enumerate(rest))


def reference(history: list[Candle], config: IndicatorConfig) -> dict[str, float | None]:
    closes = [float(c.close) for c in history]
    volumes = [float(c.volume) for c in history]
    changes = [b - a for a, b in itertools.pairwise(closes)]
    avg_gain = smoothed([max(d, 0.0) for d in changes], config.rsi_period, 1 / config.rsi_period)
    avg_loss = smoothed([max(-d, 0.0) for d in changes], config.rsi_period, 1 / config.rsi_period)
    rsi = None
    if avg_gain is not None and avg_loss is not None:
        rsi = (100.0 if avg_gain > 0 else 50.0) if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    true_ranges = [
        max(float(c.high) - float(c.low), abs(float(c.high) - p), abs(float(c.low) - p))
        for p, c in zip(closes, history[1:], strict=False)
    ]
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    w = config.volatility_window
    previous = volumes[:-1][-config.volume_window:]
    z = None
    if len(previous) == config.volume_window and statistics.stdev(previous) > 0:
        z = (volumes[-1] - statistics.mean(previous)) / statistics.stdev(previous)
    return {
        "ema_fast": smoothed(closes, config.ema_fast, 2 / (config.ema_fast + 1)),
        "ema_slow": smoothed(closes, config.ema_slow, 2 / (config.ema_slow + 1)),
        "rsi": rsi,
        "atr": smoothed(true_ranges, config.atr_period, 1 / config.atr_period),
        "realised_volatility": statistics.stdev(returns[-w:]) if len(returns) >= w else None,
        "volume_zscore": z,
    }


CONFIGS = [
    IndicatorConfig(),
    IndicatorConfig(ema_fast=1, ema_slow=5, rsi_period=3, atr_period=1, volatility_window=2, volume_window=3),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "short"])
def test_every_indicator_matches_the_whole_history_reference(config: IndicatorConfig) -> None:
    candles = random_walk(300)
    _, results = fold(candles, config)
    for i, result in enumerate(results):
        assert result is not None
        expected = reference(candles[: i + 1], config)
        for name in NAMES:
            got, want = getattr(result, name), expected[name]
            assert (got is None) == (want is None), f"candle {i} {name}: {got} vs {want}"
            if want is not None:
                assert math.isclose(got, want, rel_tol=1e-9), f"candle {i} {name}: {got} vs {want}"


def test_warm_up_first_value_appears_on_a_known_candle_and_stays() -> None:
    _, results = fold(random_walk(40), IndicatorConfig())
    first = {}
    for name in NAMES:
        present = [getattr(r, name) is not None for r in results if r is not None]
        first[name] = present.index(True)
        assert all(present[first[name]:]), f"{name} disappeared after warm-up"
    # 0-based candle index: EMA(n) at n-1; RSI/ATR(14) need 14 changes; windows of 20 returns/volumes.
    assert first == {"ema_fast": 11, "ema_slow": 25, "rsi": 14, "atr": 14,
                     "realised_volatility": 20, "volume_zscore": 20}


def test_flat_market_gives_neutral_rsi_zero_volatility_and_no_volume_zscore() -> None:
    candles = [candle(i, 100.0, 10.0, high=100.5, low=99.5) for i in range(30)]
    state, results = fold(candles, IndicatorConfig())
    last = results[-1]
    assert state is not None and last is not None
    assert (last.ema_fast, last.ema_slow, last.rsi, last.realised_volatility) == (100.0, 100.0, 50.0, 0.0)
    assert last.atr == pytest.approx(1.0, rel=1e-12)
    assert last.volume_zscore is None  # constant volumes: stdev 0, no division by zero


def test_rising_market_has_rsi_100() -> None:
    _, results = fold([candle(i, 100.0 + i, 10.0 + i % 3) for i in range(20)], IndicatorConfig())
    assert results[-1] is not None and results[-1].rsi == 100.0


def test_redelivered_or_older_candle_changes_nothing() -> None:
    candles, config = random_walk(60), IndicatorConfig()
    state, _ = fold(candles[:40], config)
    assert state is not None
    assert apply_candle(state, candles[39], config) == (state, None)  # same candle again
    assert apply_candle(state, candles[10], config) == (state, None)  # an older one
    clean, clean_results = fold(candles, config)
    noisy_stream = [c for pair in zip(candles, candles, strict=True) for c in pair] + candles[:5]
    noisy, noisy_results = fold(noisy_stream, config)
    assert noisy == clean
    assert [r for r in noisy_results if r is not None] == clean_results


def test_state_survives_a_json_round_trip_and_continues_identically() -> None:
    candles, config = random_walk(300), IndicatorConfig()
    state, _ = fold(candles[:150], config)
    assert state is not None
    row = state.to_row()
    assert row == dataclasses.asdict(state)
    assert row["recent_returns"] is not state.recent_returns  # the row's lists are its own
    restored = IndicatorState(**json.loads(json.dumps(row)))
    assert restored == state
    straight = fold(candles[150:], config, state)
    resumed = fold(candles[150:], config, restored)
    assert resumed == straight
    final = straight[0]
    assert final is not None and final.count == 300
    assert len(final.recent_returns) == 20 and len(final.recent_volumes) == 20  # bounded state


def test_candle_of_another_series_or_nonpositive_price_is_rejected() -> None:
    config = IndicatorConfig()
    state, _ = apply_candle(None, candle(0, 100.0, 1.0), config)
    other = dataclasses.replace(candle(1, 100.0, 1.0), symbol="ETHUSDT")
    with pytest.raises(ValueError, match="ETHUSDT"):
        apply_candle(state, other, config)
    with pytest.raises(ValueError, match="positive price"):
        apply_candle(state, candle(1, 0.0, 1.0), config)
    with pytest.raises(ValueError, match="volume NaN"):
        apply_candle(state, dataclasses.replace(candle(1, 100.0, 1.0), volume=Decimal("NaN")), config)


def test_rsi_never_leaves_0_to_100_whatever_the_rounding() -> None:
    """A rise of uneven steps once gave 100.00000000000001, which the IndicatorSnapshot rule
    refuses: the analysis agent then dead-lettered the candle."""
    rng = random.Random(11)
    for _ in range(300):
        sign = rng.choice((1.0, -1.0))
        steps = [sign * rng.uniform(0.001, 50.0) for _ in range(20)]
        closes = list(itertools.accumulate(steps, initial=5000.0))
        _, results = fold([candle(i, close, 10.0) for i, close in enumerate(closes)], IndicatorConfig())
        rsi = [r.rsi for r in results if r is not None and r.rsi is not None]
        assert rsi and all(0.0 <= value <= 100.0 for value in rsi)
