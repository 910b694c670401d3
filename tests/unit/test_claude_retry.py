"""When the Claude client retries and how long it waits (streams/claude/retry.py): the API's
own signals first, within the cap, spread by jitter; spend limits by type, never by words."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streams.claude.retry import is_spend_limit, retry_after_s, retry_delay, should_retry

NOW = 1_790_000_000.0  # epoch seconds


def _body(kind: str, message: str = "", code: str | None = None) -> dict[str, object]:
    error: dict[str, object] = {"type": kind, "message": message}
    if code is not None:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error}


@pytest.mark.parametrize(("status", "headers", "retried"), [
    (500, {"x-should-retry": "false"}, False),  # the API says no: not even a 500
    (400, {"x-should-retry": "true"}, True),  # the API says yes: even a 400
    (429, {}, True), (529, {}, True), (500, {}, True), (408, {}, True), (409, {}, True),
    (400, {}, False), (401, {}, False), (403, {}, False), (404, {}, False), (413, {}, False),
    (500, {"x-should-retry": "maybe"}, True),  # anything else: the status decides
])
def test_should_retry_obeys_the_header_then_the_status(status: int, headers: dict[str, str], retried: bool) -> None:
    assert should_retry(status, headers) is retried


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after-ms": "750"}, 0.75),
    ({"retry-after-ms": "750", "retry-after": "9"}, 0.75),  # the precise one wins
    ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after": email.utils.formatdate(NOW + 7, usegmt=True)}, 7.0),
    ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),  # a date past: now
    ({"retry-after": "-4"}, 0.0),
    ({"retry-after": "nan"}, None), ({"retry-after": "inf"}, None), ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_retry_after_reads_ms_seconds_and_http_dates(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_s(headers, NOW) == (None if seconds is None else pytest.approx(seconds))


def test_a_retry_after_within_the_cap_is_waited_at_least_and_jittered_up_to_a_quarter_more() -> None:
    waits = [retry_delay(1, {"retry-after-ms": "800"}, cap_s=5, now=NOW, rand=r) for r in (0.0, 0.5, 0.999)]
    assert waits[0] == pytest.approx(0.8) and waits[1] == pytest.approx(0.9)
    assert waits[2] is not None and 0.8 < waits[2] <= 1.0


def test_jitter_never_takes_a_wait_past_the_cap() -> None:
    assert retry_delay(1, {"retry-after": "4.5"}, cap_s=5, now=NOW, rand=0.999) == pytest.approx(5, abs=1e-3)
    assert retry_delay(1, {"retry-after": "5"}, cap_s=5, now=NOW, rand=0.999) == 5


@pytest.mark.parametrize("headers", [{"retry-after": "30"}, {"retry-after-ms": "5001"},
                                     {"retry-after": email.utils.formatdate(NOW + 60, usegmt=True)}])
def test_a_retry_after_beyond_the_cap_means_do_not_retry(headers: dict[str, str]) -> None:
    assert retry_delay(1, headers, cap_s=5, now=NOW, rand=0.5) is None


def test_without_a_retry_after_the_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    plain = [retry_delay(n, {}, cap_s=3, now=NOW, rand=0.0) for n in (1, 2, 3, 4, 50)]
    assert plain == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry_delay(2, {}, cap_s=3, now=NOW, rand=0.999) == pytest.approx(0.75, abs=1e-3)
    assert retry_delay(1, {"retry-after": "0"}, cap_s=3, now=NOW, rand=0.0) == 0.5  # "0": the backoff


@given(st.integers(1, 10_000), st.floats(0, 0.9999), st.floats(0, 120), st.floats(0.01, 60))
@example(1, 0.9999, 0.3, 0.3)  # asked exactly the cap: waited, no jitter past it
def test_no_wait_is_sooner_than_asked_or_longer_than_the_cap(attempt: int, rand: float, asked: float,
                                                             cap: float) -> None:
    header = repr(asked * 1000)
    asked = float(header) / 1000  # what the header says, after the round trip through milliseconds
    wait = retry_delay(attempt, {"retry-after-ms": header}, cap_s=cap, now=NOW, rand=rand)
    if asked > cap:
        assert wait is None
    else:
        assert wait is not None and wait <= cap + 1e-9 and (asked == 0 or wait >= asked - 1e-9)


def test_two_workers_told_the_same_retry_after_come_back_at_different_times() -> None:
    told = {"retry-after": "2"}
    assert retry_delay(1, told, cap_s=5, now=NOW, rand=0.1) != retry_delay(1, told, cap_s=5, now=NOW, rand=0.7)


@pytest.mark.parametrize(("status", "body", "spend"), [
    (429, _body("rate_limit_error", "Number of requests exceeded", "enforced_spend_limit_reached"), True),
    (429, _body("rate_limit_error", "Slow down please (temporary).", "enforced_spend_limit_reached"), True),
    (400, _body("invalid_request_error", "x", "contract_spend_limit_reached"), True),
    (402, _body("billing_error", "There is an issue with your payment"), True),
    (402, None, True),  # no body at all: the status says it
    (400, _body("billing_error", "Hello"), True),
    # words are not types: a rate limit or a bad request that talks about credit or billing
    (429, _body("rate_limit_error", "Your credit balance and spend limit look fine; slow down."), False),
    (400, _body("invalid_request_error", "Your credit balance is too low (billing, usage limit)"), False),
    (429, _body("rate_limit_error", "rate limited", "ramp_limit_exceeded"), False),
    (500, "credit balance spend limit", False), (429, {"error": "billing_error"}, False),
    (429, {"error": {"type": ["billing_error"], "details": {"error_code": 7}}}, False),
])
def test_a_spend_limit_is_known_by_status_type_and_code_not_words(status: int, body: object, spend: bool) -> None:
    assert is_spend_limit(status, body) is spend
