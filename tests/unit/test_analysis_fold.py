"""The analysis fold in domain/fold.py's shape: each candle gives the series' snapshot and
its anomalies once, whatever the delivery does."""

from __future__ import annotations

from domain.analysis.series import Analysis, AnalysisInput, SeriesState
from domain.fold import Position, step
from schemas.records import Anomaly, IndicatorSnapshot
from tests.factories import T0
from tests.unit.test_indicators import candle, random_walk

FOLD = Analysis("test")


def test_each_candle_gives_a_snapshot_then_its_anomalies() -> None:
    state = SeriesState()
    outputs = []
    for offset, c in enumerate([*random_walk(30), candle(40, 90000.0, 5000.0)]):  # a gap, a spike
        state, out = step(FOLD.evolve, state, AnalysisInput(c, T0), 0, offset)
        assert isinstance(out[0], IndicatorSnapshot) and all(isinstance(a, Anomaly) for a in out[1:])
        outputs.append(out)
    assert state.applied == Position(0, 30)
    assert {a.rule for a in outputs[-1][1:]} >= {"gap", "volume_zscore"}


def test_a_redelivered_or_reemitted_candle_changes_nothing() -> None:
    candles = random_walk(20)
    state = SeriesState()
    for offset, c in enumerate(candles):
        state, _ = step(FOLD.evolve, state, AnalysisInput(c, T0), 1, offset)
    before = state.indicators
    state, out = step(FOLD.evolve, state, AnalysisInput(candles[-1], T0), 1, 19)  # re-delivered
    assert not out and state.indicators == before
    state, out = step(FOLD.evolve, state, AnalysisInput(candles[-1], T0), 1, 25)  # re-emitted later
    assert not out and state.indicators == before and state.applied == Position(1, 25)
