"""When a fold's next checkpoint may come: writing rows takes at most a share of the time."""

from __future__ import annotations

import time
from collections.abc import Callable

CHECKPOINT_SHARE = 0.05
"""The most of the worker's time that writing checkpoint rows may take. A checkpoint is due
once the time since the last one, times this share, covers what the rows changed since
would cost to write at the last checkpoint's cost a row: with 5,000 symbols changing (~1 s
of rows and their history) about every 20 s, so a crash then re-reads that much of its
source topic; with a few symbols at every tick of the checkpoint timer."""

FIRST_ROW_COST_S = 100e-6
"""What a row is taken to cost before a checkpoint has measured it."""


class CheckpointPace:
    """Checkpoints within ``CHECKPOINT_SHARE`` of the time, by the last one's cost a row."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._ended = clock()
        self._row_cost_s = FIRST_ROW_COST_S

    def due(self, changed: int) -> bool:
        """Whether ``changed`` rows may be written now."""
        waited = self.clock() - self._ended
        return changed > 0 and waited * CHECKPOINT_SHARE >= changed * self._row_cost_s

    def ended(self, written: int, spent_s: float) -> None:
        """A checkpoint ended: it wrote ``written`` rows in ``spent_s`` seconds of writing."""
        self._ended = self.clock()
        if written:
            self._row_cost_s = spent_s / written
