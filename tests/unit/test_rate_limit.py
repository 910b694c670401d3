"""The per-client token bucket behind GET /assess (domain/ops/rate_limit.py), on an injected clock."""

from __future__ import annotations

import pytest

from domain.ops.rate_limit import RateLimiter, retry_after


def test_a_burst_then_one_request_per_refill_and_the_wait_until_the_next() -> None:
    limiter = RateLimiter(rate_per_s=6 / 60, burst=3)
    assert [limiter.take("1.2.3.4", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("1.2.3.4", 0.0)
    assert wait == pytest.approx(10.0) and retry_after(wait) == "10"
    assert limiter.take("1.2.3.4", 5.0) == pytest.approx(5.0)  # refused requests take nothing
    assert limiter.take("1.2.3.4", 10.0) == 0.0
    assert limiter.take("5.6.7.8", 10.0) == 0.0  # another client has its own bucket


def test_tokens_never_exceed_the_burst_and_a_clock_going_back_adds_none() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=2)
    limiter.take("c", 0.0)
    assert [limiter.take("c", 1_000_000.0) for _ in range(3)][2] > 0  # only 2 after a long pause
    assert limiter.take("c", 0.0) > 0


def test_the_table_is_bounded_and_forgets_the_least_recently_seen_client() -> None:
    limiter = RateLimiter(rate_per_s=0.001, burst=1, max_clients=100)
    limiter.take("old", 0.0)
    assert limiter.take("old", 0.0) > 0
    for n in range(10_000):
        limiter.take(f"10.0.{n // 256}.{n % 256}", 1.0)
    assert len(limiter) == 100
    assert limiter.take("old", 2.0) == 0.0  # forgotten: starts again with a full bucket


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(0.01) == "1" and retry_after(9.2) == "10"
