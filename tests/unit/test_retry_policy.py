"""The retry policy with plain values."""

from __future__ import annotations

from domain.ops.retry import RetryPolicy


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=0.5, cap_s=3.0)
    assert [policy.delay_after(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_transient_failures_are_retried_until_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.should_retry(True, n) for n in (1, 2, 3)] == [True, True, False]


def test_permanent_failures_are_never_retried() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert not policy.should_retry(False, 1)


def test_the_attempt_number_comes_from_the_retry_header() -> None:
    from types import SimpleNamespace

    from streams.resilience.retry import ATTEMPT_HEADER, attempt_of

    assert attempt_of(SimpleNamespace(headers=[(ATTEMPT_HEADER, b"3")])) == 3
    assert attempt_of(SimpleNamespace(headers={ATTEMPT_HEADER: b"2"})) == 2
    assert attempt_of(SimpleNamespace(headers=None)) == 1
    assert attempt_of(SimpleNamespace(headers=[(ATTEMPT_HEADER, b"junk")])) == 1


def test_timeouts_and_transient_errors_are_transient_and_bugs_are_not() -> None:
    from streams.errors import CorruptRecord, TransientError
    from streams.resilience.retry import is_transient

    assert is_transient(TransientError("registry unreachable")) and is_transient(TimeoutError())
    assert not is_transient(CorruptRecord("bad bytes")) and not is_transient(KeyError("x"))


def test_the_wait_is_what_is_left_of_the_backoff() -> None:
    policy = RetryPolicy(max_attempts=4, base_s=2.0, cap_s=30.0)
    failed_at = 1_700_000_000_000_000
    assert policy.wait_s(1, failed_at, failed_at) == 2.0
    assert policy.wait_s(1, failed_at, failed_at + 500_000) == 1.5
    assert policy.wait_s(2, failed_at, failed_at + 1_000_000) == 3.0


def test_a_forged_failure_time_cannot_stall_or_spin_the_retry_agent() -> None:
    policy = RetryPolicy(max_attempts=4, base_s=1.0, cap_s=30.0)
    now = 1_700_000_000_000_000
    far_future = now + 10 * 365 * 86_400 * 1_000_000
    assert policy.wait_s(1, far_future, now) == 1.0  # the backoff, not ten years
    assert policy.wait_s(3, far_future, now) == 4.0
    assert policy.wait_s(1, 0, now) == 0.0  # due long ago: at once, and only once
    assert policy.wait_s(10**9, far_future, now) == 30.0  # any attempt number: the cap
    assert policy.wait_s(-5, now, now) == 1.0
