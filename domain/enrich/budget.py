"""Spend and rate limits of the Claude calls, pure, with the clock passed in.

Every API attempt (a first ask, a re-ask, each retry) RESERVES its worst case before it
is sent: the most input tokens its prompt can be (``worst_input_tokens``), plus the
request's ``max_tokens``, and their price. An attempt that does not fit every limit
(requests, input and output tokens per sliding minute; tokens and dollars per UTC day)
is refused (``OverBudget``) and not sent; nothing queues. After the attempt the caller
SETTLES the reservation with the usage the API reported (the unused part is released)
or KEEPS it when there is no usage to read (an error, a time-out: the attempt may have
been billed). Since reserving and checking are one synchronous step, concurrent callers
can never together go past a limit. An attempt counts on the UTC day it was sent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MINUTE_S = 60.0
DAY_S = 86_400.0
CONTEXT_WINDOW_TOKENS = 200_000
"""No Messages API request can have more input tokens (a longer one is refused, unbilled)."""
FRAMING_TOKENS = 512
"""What the API adds to a prompt of its own (message framing, the tool-use system prompt)."""
_SLACK_USD = 1e-12  # float noise of many reserve/settle steps


def worst_input_tokens(prompt: str) -> int:
    """The most input tokens a prompt (system, tools and messages as text) can count:
    a token is at least one UTF-8 byte, plus the API's framing, within the context window."""
    return min(len(prompt.encode()) + FRAMING_TOKENS, CONTEXT_WINDOW_TOKENS)


class OverBudget(Exception):
    """An attempt that would break a limit (its name in ``limit``): it must not be sent."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"over budget: {limit}")
        self.limit = limit


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
        """The price of a call of these tokens."""
        return (input_tokens * self.usd_per_mtok_in + output_tokens * self.usd_per_mtok_out) / 1e6


@dataclass
class _Spent:
    """One attempt in the minute window (reserved, then settled in place)."""

    at: float
    input_tokens: int
    output_tokens: int


@dataclass
class Reservation:
    """What one attempt holds until it is settled or kept."""

    at: float
    day: int
    input_tokens: int
    output_tokens: int
    usd: float
    spent: _Spent
    open: bool = True


@dataclass
class Budget:
    """What was reserved and spent in the last minute and today."""

    limits: Limits
    _minute: deque[_Spent] = field(default_factory=deque)
    day: int = -1
    day_tokens: int = 0
    day_usd: float = 0.0
    total_usd: float = 0.0
    in_flight: int = 0

    def _roll(self, now: float) -> None:
        while self._minute and now - self._minute[0].at >= MINUTE_S:
            self._minute.popleft()
        today = int(now // DAY_S)
        if today != self.day:
            self.day, self.day_tokens, self.day_usd = today, 0, 0.0

    def refuse(self, now: float, input_tokens: int, output_tokens: int) -> str | None:
        """None if an attempt of this size fits every limit now, else the limit it breaks."""
        self._roll(now)
        lim = self.limits
        tokens_in = sum(entry.input_tokens for entry in self._minute)
        tokens_out = sum(entry.output_tokens for entry in self._minute)
        checks = (
            ("requests_per_min", lim.requests_per_min, len(self._minute) + 1),
            ("input_tokens_per_min", lim.input_tokens_per_min, tokens_in + input_tokens),
            ("output_tokens_per_min", lim.output_tokens_per_min, tokens_out + output_tokens),
            ("daily_tokens", lim.daily_tokens, self.day_tokens + input_tokens + output_tokens),
        )
        for name, limit, wanted in checks:
            if limit and wanted > limit:
                return name
        if lim.daily_usd and self.day_usd + lim.cost_usd(input_tokens, output_tokens) > lim.daily_usd + _SLACK_USD:
            return "daily_usd"
        return None

    def reserve(self, now: float, input_tokens: int, output_tokens: int) -> Reservation:
        """Hold the worst case of an attempt, or raise OverBudget (then it is not sent)."""
        refused = self.refuse(now, input_tokens, output_tokens)
        if refused:
            raise OverBudget(refused)
        spent = _Spent(now, input_tokens, output_tokens)
        self._minute.append(spent)
        usd = self.limits.cost_usd(input_tokens, output_tokens)
        self.day_tokens += input_tokens + output_tokens
        self.day_usd += usd
        self.total_usd += usd
        self.in_flight += 1
        return Reservation(now, self.day, input_tokens, output_tokens, usd, spent)

    def settle(self, reservation: Reservation, now: float, input_tokens: int, output_tokens: int) -> float:
        """Replace a reservation by the usage the API reported; the cost booked. Usage
        above the reservation is booked as reported (then later attempts are refused)."""
        if not reservation.open:
            return 0.0
        self._roll(now)
        input_tokens, output_tokens = max(0, input_tokens), max(0, output_tokens)
        usd = self.limits.cost_usd(input_tokens, output_tokens)
        reservation.spent.input_tokens, reservation.spent.output_tokens = input_tokens, output_tokens
        if reservation.day == self.day:  # else it was booked on a day that is over
            self.day_tokens += input_tokens + output_tokens - reservation.input_tokens - reservation.output_tokens
            self.day_usd += usd - reservation.usd
        self.total_usd += usd - reservation.usd
        self._close(reservation)
        return usd

    def keep(self, reservation: Reservation) -> float:
        """Book a reservation as it stands (no usage was reported); the cost booked."""
        if not reservation.open:
            return 0.0
        self._close(reservation)
        return reservation.usd

    def _close(self, reservation: Reservation) -> None:
        reservation.open = False
        self.in_flight -= 1
