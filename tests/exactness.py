"""Exactness checks shared by the crash tests: the candles on market.candles equal the
independent reference fold (tests/reference.py) over the trades produced, none missing,
doubled or different, and the late trades are exactly the reference's; the snapshots on
analysis.indicators are the pure analysis fold's over those candles."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from domain.analysis.series import Analysis, AnalysisInput, SeriesState
from domain.clock import EPOCH
from domain.market.bars import Tick
from domain.market.candles import ClosedCandle, candle_record
from schemas.records import Candle, IndicatorSnapshot, Trade
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.json_form import event_to_json
from streams.settings import Settings
from tests.reference import fold_reference


def tick(trade: Trade) -> Tick:
    """A Trade as the reference fold's input."""
    return Tick(trade.symbol, trade.trade_id, (trade.trade_time - EPOCH) // timedelta(microseconds=1),
                int(trade.price.scaleb(18)), int(trade.size.scaleb(18)), trade.taker_side == "BUY")


def payload(candle: Candle) -> dict[str, Any]:
    """A candle's fields without its envelope."""
    shown = event_to_json(candle)
    shown.pop("envelope")
    return shown


def collect(settings: Settings, topic: str) -> list[Any]:
    """Every decoded event on ``topic`` now."""
    return [r.event for r in read_topic(settings, topic, idle_timeout=3, until_end=True) if isinstance(r, Consumed)]


def assert_exact(settings: Settings, trades: list[Trade], timeout: float = 180, expect_late: bool = True) -> int:
    """Wait (up to ``timeout``) for every reference candle, then check them all; the number
    of candles published more than once (re-emitted after a crash, same id and values)."""
    expected = fold_reference([tick(t) for t in trades], settings.window_specs,
                              int(settings.grace_s * 1_000_000))
    wanted = {
        (s, i, start): payload(candle_record(ClosedCandle(s, i, bar), "reference", EPOCH))
        for (s, i, start), bar in expected.candles.items()
    }
    deadline = time.monotonic() + timeout
    while True:
        candles = collect(settings, "market.candles")
        by_id: dict[str, Candle] = {}
        for candle in candles:
            earlier = by_id.setdefault(candle.envelope.event_id, candle)
            assert payload(earlier) == payload(candle), "a re-emitted candle differs"
        got = {(c.symbol, c.interval, (c.window_start - EPOCH) // timedelta(microseconds=1)): payload(c)
               for c in by_id.values()}
        if len(got) >= len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(got) == len(by_id), "two candle ids for one window"
    assert sorted(set(wanted) - set(got))[:5] == [], "missing candles"
    assert sorted(set(got) - set(wanted))[:5] == [], "unexpected candles"
    wrong = [k for k in wanted if wanted[k] != got[k]]
    assert wrong == [], f"{len(wrong)} candles differ, e.g. {wanted[wrong[0]]} != {got[wrong[0]]}"
    late = {(t.symbol, t.trade_id) for t in collect(settings, "market.late")}
    assert late == {(t.symbol, t.trade_id) for t in expected.late}
    assert not expect_late or settings.grace_s > 1 or late, "the feed's out-of-order share should leave some late"
    return len(candles) - len(by_id)


INDICATORS = ("ema_fast", "ema_slow", "rsi", "atr", "realised_volatility", "volume_zscore")
"""What an IndicatorSnapshot says about its candle."""


def assert_exact_indicators(settings: Settings, trades: list[Trade], timeout: float = 120) -> None:
    """Wait (up to ``timeout``) for a snapshot of every reference candle on analysis.indicators,
    then check each says what the pure analysis fold says over the reference candles of its
    series in window order: none missing, and one sent again (after a crash) the same."""
    expected = fold_reference([tick(t) for t in trades], settings.window_specs, int(settings.grace_s * 1_000_000))
    fold, wanted = Analysis("reference"), {}
    series: dict[tuple[str, str], list[tuple[int, Candle]]] = {}
    for (symbol, interval, start), bar in expected.candles.items():
        series.setdefault((symbol, interval), []).append(
            (start, candle_record(ClosedCandle(symbol, interval, bar), "reference", EPOCH)))
    for candles in series.values():
        state = SeriesState()
        for _, candle in sorted(candles, key=lambda item: item[0]):
            state, outputs = fold.evolve(state, AnalysisInput(candle, EPOCH))
            wanted.update((o.candle_id, _said(o)) for o in outputs if isinstance(o, IndicatorSnapshot))
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, dict[str, Any]] = {}
        for snapshot in collect(settings, "analysis.indicators"):
            said = got.setdefault(snapshot.candle_id, _said(snapshot))
            assert said == _said(snapshot), "a snapshot sent again differs"
        if len(got) >= len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(2)
    missing = sorted(set(wanted) - set(got))
    assert missing == [], f"{len(missing)} of {len(wanted)} snapshots missing, e.g. {missing[:5]}"
    assert sorted(set(got) - set(wanted))[:5] == [], "unexpected snapshots"
    wrong = [k for k in wanted if wanted[k] != got[k]]
    assert wrong == [], f"{len(wrong)} snapshots differ, e.g. {wanted[wrong[0]]} != {got[wrong[0]]}"


def _said(snapshot: IndicatorSnapshot) -> dict[str, Any]:
    return {name: getattr(snapshot, name) for name in INDICATORS}
