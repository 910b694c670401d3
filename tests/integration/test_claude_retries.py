"""The Claude client follows the API's own retry signals and knows a spend limit by its error
type, through the real ``anthropic`` client against the fake Messages API (tests/fakes):
``retry-after-ms`` is waited out and not cut short, ``x-should-retry: false`` is obeyed, a
retry-after beyond the cap is not retried sooner, and the words of a message decide nothing."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest
from prometheus_client import CollectorRegistry

from domain.enrich.breaker import CircuitBreaker
from domain.enrich.budget import Budget, Limits
from domain.enrich.cache import ResponseCache
from domain.enrich.context import Context, build_context, subject_of
from domain.enrich.outcome import Outcome
from schemas.records import EnrichmentSource
from streams.claude.client import ClaudeClient
from streams.claude.enricher import Enricher
from streams.claude.metrics import EnrichmentMetrics
from tests.factories import make_anomaly
from tests.fakes.anthropic_server import FakeAnthropic

UNLIMITED = Limits(requests_per_min=0, input_tokens_per_min=0, output_tokens_per_min=0,
                   daily_tokens=0, daily_usd=0)
CAP_S = 5.0


def _enrich(fake: FakeAnthropic, n: int = 2, deadline: float = 8.0) -> list[Outcome]:
    client = ClaudeClient(api_key="test-key", model="claude-haiku-4-5", base_url=fake.url, timeout_s=2.0,
                          max_retries=2, retry_after_cap_s=CAP_S)
    enricher = Enricher(client=client, budget=Budget(UNLIMITED), breaker=CircuitBreaker(3, 30),
                        cache=ResponseCache(ttl_s=3600), metrics=EnrichmentMetrics(CollectorRegistry()),
                        batch_max=8, concurrency=1, clock=lambda: 1_000.0)
    contexts: list[Context] = [build_context(subject_of(make_anomaly(value=3.0 + i / 10)), [], 500)
                               for i in range(n)]
    return asyncio.run(enricher.enrich(contexts, deadline))


def test_a_429_with_retry_after_ms_is_retried_after_that_delay_and_not_before(fake: FakeAnthropic) -> None:
    fake.state.retry_after = "4"  # the coarse header says 4 s; the precise one wins
    fake.state.headers["rate_limited"] = {"retry-after-ms": "700"}
    fake.script("rate_limited", "normal")
    outcomes = _enrich(fake)
    assert {o.source for o in outcomes} == {EnrichmentSource.CLAUDE} and fake.calls == 2
    waited = fake.state.times[1] - fake.state.times[0]
    assert waited >= 0.7  # not before: the backoff alone would have come back after 0.375-0.5 s
    assert waited < 4.0  # the milliseconds were followed, not the 4 s


def test_a_retry_after_http_date_is_waited_until(fake: FakeAnthropic) -> None:
    # whole seconds: 2-3 s after now, so over 1 s after the first request even if that is slow to go
    fake.state.retry_after = email.utils.formatdate(time.time() + 3, usegmt=True)
    fake.script("rate_limited", "normal")
    outcomes = _enrich(fake)
    assert {o.source for o in outcomes} == {EnrichmentSource.CLAUDE} and fake.calls == 2
    assert fake.state.times[1] - fake.state.times[0] > 1.0


@pytest.mark.parametrize("fault", ["server_error", "overloaded", "rate_limited"])
def test_x_should_retry_false_is_not_retried(fake: FakeAnthropic, fault: str) -> None:
    fake.state.headers[fault] = {"x-should-retry": "false"}
    fake.script(fault, "normal")
    outcomes = _enrich(fake)
    assert fake.calls == 1
    assert {o.source for o in outcomes} == {EnrichmentSource.FALLBACK}
    assert {o.reason for o in outcomes} == {{"server_error": "server_error", "overloaded": "overloaded",
                                             "rate_limited": "rate_limited"}[fault]}


def test_x_should_retry_true_retries_an_error_the_status_alone_would_not(fake: FakeAnthropic) -> None:
    fake.state.headers["server_error"] = {"x-should-retry": "true"}
    fake.script("server_error", "normal")
    assert {o.source for o in _enrich(fake)} == {EnrichmentSource.CLAUDE} and fake.calls == 2


def test_a_retry_after_beyond_the_cap_is_not_retried_sooner_than_asked(fake: FakeAnthropic) -> None:
    fake.state.retry_after = "30"  # the cap is 5 s: coming back sooner would only be refused again
    fake.script("rate_limited", "normal")
    outcomes = _enrich(fake)
    assert fake.calls == 1 and {o.reason for o in outcomes} == {"rate_limited"}
    assert all(o.source is EnrichmentSource.FALLBACK for o in outcomes)


@pytest.mark.parametrize(("fault", "message"), [
    ("spend_limit", "Number of requests has exceeded your rate limit. Please slow down."),  # misleading words
    ("spend_limit", ""),
    ("billing", "Hello there."),
])
def test_a_spend_limit_is_known_by_its_type_whatever_the_message_says(
        fake: FakeAnthropic, fault: str, message: str) -> None:
    fake.state.messages[fault] = message
    fake.script(fault, "normal")
    outcomes = _enrich(fake)
    assert fake.calls == 1  # never retried
    assert {o.reason for o in outcomes} == {"spend_limit"}
    assert all(o.source is EnrichmentSource.FALLBACK for o in outcomes)


@pytest.mark.parametrize("fault", ["rate_limited", "overloaded", "server_error"])
def test_a_message_about_credit_or_spend_limits_with_another_type_is_not_a_spend_limit(
        fake: FakeAnthropic, fault: str) -> None:
    fake.state.messages[fault] = "Your credit balance is too low; spend limit reached (billing, usage limit)."
    fake.script(fault, "normal")
    outcomes = _enrich(fake)
    assert fake.calls == 2  # retried like any other rate limit or server error, then answered
    assert {o.source for o in outcomes} == {EnrichmentSource.CLAUDE}
