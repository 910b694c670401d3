"""The market pipeline: candle windows, lateness, the idle close, the trade reader's runs,
checkpoints, the final candles kept and the intervals the analysis folds."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from domain.market.windows import DEFAULT_WINDOWS, WindowSpec, parse_windows
from domain.rules.fields import DEFAULT_MAX_FUTURE_SKEW_S


class MarketSettings(BaseModel):
    """The market pipeline's part of ``Settings``."""

    windows: str = Field(DEFAULT_WINDOWS, description="Candle windows: 1m tumbling, 5m/1m hopping")
    grace_s: float = Field(5.0, ge=0, description="How late (event time) a trade may still count")
    idle_close_s: float = Field(10.0, gt=0, description="After this much quiet a symbol's clock runs on with "
                                "wall time: its windows close as their end (plus grace) passes on it")
    idle_close_all: bool = Field(False, description="After idle_close_s of quiet close every open window at "
                                 "once (the end of a recording or a backtest): later trades inside are late")
    checkpoint_s: float = Field(1.0, gt=0, le=60, description="How often the candle fold and the analysis "
                                "write the rows they changed (a crash re-reads about this much of their input; "
                                "with thousands of symbols changing, longer: rows take at most a twentieth "
                                "of the time)")
    candle_history: int = Field(500, ge=1, description="Final candles kept per symbol and interval")
    batch_max: int = Field(2000, ge=1, description="Most trades folded per batch")
    batch_wait_s: float = Field(0.05, gt=0, description="Longest wait to fill a batch")
    max_future_skew_s: float = Field(DEFAULT_MAX_FUTURE_SKEW_S, ge=0, le=86_400,
                                     description="How far past now an event time may be; later records are refused")
    analysis_intervals: str = Field(
        "", pattern=r"^[A-Za-z0-9/, ]*$", description="Candle intervals the analysis folds (comma-separated; "
        "empty: every window's). With thousands of symbols leave 1s out: ~0.3 ms of CPU a candle")

    @field_validator("windows")
    @classmethod
    def _check_windows(cls, value: str) -> str:
        parse_windows(value)
        return value

    @property
    def window_specs(self) -> tuple[WindowSpec, ...]:
        """The candle windows, parsed."""
        return parse_windows(self.windows)
