"""Spend and rate limits of the Claude calls, pure, with the clock passed in.

Per minute (a sliding 60 s window): requests, input tokens, output tokens. Per UTC day:
total tokens and dollars. ``refuse`` answers why a call that would use the given
(estimated) tokens must not go out now; ``record`` books what a call really used.
Over budget means the caller falls back at once: nothing is queued.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MINUTE_S = 60.0
DAY_S = 86_400.0


@dataclass(frozen=True)
class Limits:
    """Zero means no limit."""

    requests_per_min: int = 50
    input_tokens_per_min: int = 40_000
    output_tokens_per_min: int = 8_000
    daily_tokens: int = 2_000_000
    daily_usd: float = 5.0
    usd_per_mtok_in: float = 1.0
    usd_per_mtok_out: float = 5.0

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        """The estimated price of a call."""
        return (input_tokens * self.usd_per_mtok_in + output_tokens * self.usd_per_mtok_out) / 1e6


@dataclass
class Budget:
    """What was spent in the last minute and today."""

    limits: Limits
    _minute: deque[tuple[float, int, int]] = field(default_factory=deque)
    day: int = -1
    day_tokens: int = 0
    day_usd: float = 0.0
    total_usd: float = 0.0

    def _roll(self, now: float) -> None:
        while self._minute and now - self._minute[0][0] >= MINUTE_S:
            self._minute.popleft()
        today = int(now // DAY_S)
        if today != self.day:
            self.day, self.day_tokens, self.day_usd = today, 0, 0.0

    def refuse(self, now: float, input_tokens: int, output_tokens: int) -> str | None:
        """None if a call of this size fits every limit now, else the limit it breaks."""
        self._roll(now)
        lim = self.limits
        requests = len(self._minute)
        tokens_in = sum(entry[1] for entry in self._minute)
        tokens_out = sum(entry[2] for entry in self._minute)
        checks = (
            ("requests_per_min", lim.requests_per_min, requests + 1),
            ("input_tokens_per_min", lim.input_tokens_per_min, tokens_in + input_tokens),
            ("output_tokens_per_min", lim.output_tokens_per_min, tokens_out + output_tokens),
            ("daily_tokens", lim.daily_tokens, self.day_tokens + input_tokens + output_tokens),
        )
        for name, limit, wanted in checks:
            if limit and wanted > limit:
                return name
        if lim.daily_usd and self.day_usd + lim.cost_usd(input_tokens, output_tokens) > lim.daily_usd:
            return "daily_usd"
        return None

    def record(self, now: float, input_tokens: int, output_tokens: int) -> float:
        """Book a call that went out (failed calls count too: they used a request); its cost."""
        self._roll(now)
        self._minute.append((now, input_tokens, output_tokens))
        cost = self.limits.cost_usd(input_tokens, output_tokens)
        self.day_tokens += input_tokens + output_tokens
        self.day_usd += cost
        self.total_usd += cost
        return cost
