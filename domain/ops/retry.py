"""The retry policy: bounded attempts with exponential backoff (pure).

A failure that is not retried goes to the dead-letter topic: reason ``retries_exhausted``
for a transient one out of attempts, the usual reason for a permanent one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries in all; the wait before try n+1 doubles from ``base_s`` up
    to ``cap_s``."""

    max_attempts: int = 4
    base_s: float = 1.0
    cap_s: float = 30.0

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based; any int)."""
        return float(min(self.cap_s, self.base_s * 2.0 ** min(max(0, attempt - 1), 64)))

    def wait_s(self, attempt: int, failed_at_us: int, now_us: int) -> float:
        """Seconds still to wait before retrying a record whose attempt ``attempt`` failed
        at ``failed_at_us``: never more than the backoff itself (a failure time in the
        future, forged or from a skewed clock) and never less than 0 (one in the past)."""
        delay = self.delay_after(attempt)
        return min(delay, max(0.0, delay - (now_us - failed_at_us) / 1_000_000))

    def should_retry(self, transient: bool, attempt: int) -> bool:
        """Whether a failure of attempt ``attempt`` gets another try."""
        return transient and attempt < self.max_attempts
