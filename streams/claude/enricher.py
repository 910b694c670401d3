"""The enrichment service: cache, budget, circuit breaker, batching and fallback around
the Claude client. ``Enricher.enrich(contexts)`` gives exactly one Outcome per context,
always before the deadline: Claude's, the cache's, or the fallback's with its reason.

Each call gets a ``BudgetMeter`` on the worker's one Budget: every API attempt reserves
its worst case before it is sent and settles after, so concurrent batches (and the
/assess view) can never together spend past a limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from domain.enrich.assessment import Assessment, fallback_assessment
from domain.enrich.batching import plan_batches
from domain.enrich.breaker import CircuitBreaker, Transition
from domain.enrich.budget import Budget, Limits, Reservation
from domain.enrich.cache import ResponseCache
from domain.enrich.context import Context
from domain.enrich.outcome import Outcome
from schemas.records import EnrichmentSource
from streams.claude.client import Assessor, ClaudeClient, ClaudeUnavailable, Usage
from streams.claude.metrics import EnrichmentMetrics
from streams.settings import Settings

log = logging.getLogger(__name__)
Persist = Callable[[str, str, Outcome, float], Awaitable[None]]


async def _no_persist(key: str, subject_id: str, outcome: Outcome, stored_at: float) -> None:
    return None


def client_from(settings: Settings) -> ClaudeClient | None:
    """The real client, or None without an API key (then everything falls back)."""
    if settings.anthropic_api_key is None:
        return None
    return ClaudeClient(
        api_key=settings.anthropic_api_key.get_secret_value(), model=settings.anthropic_model,
        base_url=settings.anthropic_base_url, timeout_s=settings.anthropic_timeout_s,
        max_retries=settings.anthropic_max_retries,
        retry_after_cap_s=settings.anthropic_retry_after_cap_s,
        max_output_tokens=settings.enrich_max_output_tokens)


def limits_from(settings: Settings) -> Limits:
    """The budget limits of the settings."""
    return Limits(
        requests_per_min=settings.enrich_requests_per_min,
        input_tokens_per_min=settings.enrich_input_tokens_per_min,
        output_tokens_per_min=settings.enrich_output_tokens_per_min,
        daily_tokens=settings.enrich_daily_tokens, daily_usd=settings.enrich_daily_usd,
        usd_per_mtok_in=settings.enrich_usd_per_mtok_in,
        usd_per_mtok_out=settings.enrich_usd_per_mtok_out)


@dataclass
class BudgetMeter:
    """Books the API attempts of one call on the worker's budget and its metrics."""

    budget: Budget
    clock: Callable[[], float]
    metrics: EnrichmentMetrics
    sent: int = 0

    def reserve(self, input_tokens: int, output_tokens: int) -> Reservation:
        """Hold an attempt's worst case (OverBudget: it is not sent)."""
        reservation = self.budget.reserve(self.clock(), input_tokens, output_tokens)
        self.sent += 1
        return reservation

    def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Book the reported usage, or the reservation as it stands without one."""
        if usage is None:
            cost = self.budget.keep(reservation)
        else:
            cost = self.budget.settle(reservation, self.clock(), *usage)
            self.metrics.tokens.labels("input").inc(max(0, usage[0]))
            self.metrics.tokens.labels("output").inc(max(0, usage[1]))
        self.metrics.cost.inc(cost)


@dataclass
class Enricher:
    """One per worker; agents and the /assess view share it (and so its budget)."""

    client: Assessor | None
    budget: Budget
    breaker: CircuitBreaker
    cache: ResponseCache
    metrics: EnrichmentMetrics
    batch_max: int = 8
    concurrency: int = 2
    max_output_tokens: int = 1024
    persist: Persist = _no_persist
    clock: Callable[[], float] = time.time
    chars_per_token: float = 3.5
    refresh_fallbacks: bool = False  # ask again for subjects whose published outcome was a fallback
    transitions: deque[Transition] = field(default_factory=lambda: deque(maxlen=1000))
    _slots: asyncio.Semaphore | None = None

    @property
    def model(self) -> str:
        """The model asked (or the fallback's name without a client)."""
        return self.client.model if self.client else "none"

    async def enrich(self, contexts: list[Context], deadline_s: float) -> list[Outcome]:
        """One outcome per context, in order, within ``deadline_s`` seconds. A subject
        whose outcome was already published gets that outcome again (a replay or a
        re-delivery): same values, no call."""
        deadline = time.monotonic() + deadline_s
        outcomes: dict[int, Outcome] = {}
        misses: dict[str, list[int]] = {}  # cache key -> positions asking it
        for position, context in enumerate(contexts):
            key = context.cache_key(self.model)
            hit = self.cache.answer_for(key, context.subject.event_id, self.clock(), self.refresh_fallbacks)
            if hit is not None:
                outcomes[position] = hit
            else:
                misses.setdefault(key, []).append(position)
        firsts = {key: contexts[positions[0]] for key, positions in misses.items()}
        chunks = plan_batches(firsts, self.batch_max)  # news never shares a call across sources/symbols
        answers = await asyncio.gather(*(self._ask({k: contexts[misses[k][0]] for k in chunk}, deadline)
                                         for chunk in chunks))
        for answered in answers:
            for key, outcome in answered.items():
                for position in misses[key]:
                    outcomes[position] = outcome
        result = [outcomes[p] for p in range(len(contexts))]
        for outcome in result:
            self.metrics.events.labels(outcome.source.value.lower()).inc()
            if outcome.reason:
                self.metrics.fallbacks.labels(outcome.reason).inc()
        self.metrics.count_cache(self.cache.hits, self.cache.hits + self.cache.misses)
        return result

    @staticmethod
    def fallback(context: Context, reason: str) -> Assessment:
        """The deterministic assessment of a context."""
        return fallback_assessment(context.subject.facts, context.history, reason)

    def _fallback(self, contexts: dict[str, Context], reason: str) -> dict[str, Outcome]:
        return {key: Outcome(self.fallback(c, reason), EnrichmentSource.FALLBACK, reason=reason)
                for key, c in contexts.items()}

    async def _ask(self, contexts: dict[str, Context], deadline: float) -> dict[str, Outcome]:
        """At most ``concurrency`` calls at once; the breaker is asked when a slot is free."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            return await self._ask_now(contexts, deadline)

    async def _ask_now(self, contexts: dict[str, Context], deadline: float) -> dict[str, Outcome]:
        if self.client is None:
            return self._fallback(contexts, "no_api_key")
        now = self.clock()
        if not self.breaker.allow(now):
            self._note_breaker()
            return self._fallback(contexts, "breaker_open")
        self._note_breaker()
        keys = list(contexts)  # items are numbered in the prompt: short ids cost fewer tokens
        numbered = {str(n): contexts[key] for n, key in enumerate(keys)}
        meter = BudgetMeter(self.budget, self.clock, self.metrics)
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(self.client.assess(numbered, deadline, meter),
                                            max(0.0, deadline - time.monotonic()))
        except (ClaudeUnavailable, TimeoutError) as error:
            reason = error.reason if isinstance(error, ClaudeUnavailable) else "deadline"
            if not meter.sent:  # nothing went out (over budget, or no time left): not a failure
                self.breaker.cancel()
                self._note_breaker()
                return self._fallback(contexts, reason)
            self.breaker.failure(self.clock())
            self._note_breaker()
            self.metrics.calls.labels(reason).inc()
            return self._fallback(contexts, reason)
        latency = time.monotonic() - started
        self.breaker.success(self.clock())
        self._note_breaker()
        self.metrics.calls.labels("ok").inc(answer.calls)
        self.metrics.batch_latency.observe(latency)
        share = max(1, len(contexts))
        outcomes: dict[str, Outcome] = {}
        for number, key in enumerate(keys):
            context, item_id = contexts[key], str(number)
            assessment = answer.assessments.get(item_id)
            if assessment is None:
                reason = answer.reasons.get(item_id, "invalid_answer")
                outcomes[key] = self._fallback({key: context}, reason)[key]
                continue
            outcomes[key] = Outcome(assessment, EnrichmentSource.CLAUDE, model=self.model,
                                    input_tokens=answer.input_tokens // share,
                                    output_tokens=answer.output_tokens // share,
                                    latency_ms=latency * 1000)
            stored_at = self.clock()
            self.cache.remember(key, context.subject.event_id, outcomes[key], stored_at)
            try:
                await self.persist(key, context.subject.event_id, outcomes[key], stored_at)
            except Exception as error:  # the answer stands; only a replay would miss it
                log.warning("could not log a cached answer: %s", error)
        return outcomes

    def _note_breaker(self) -> None:
        """Log and count the breaker's new transitions; publish its state."""
        for change in self.breaker.drain():
            log.warning("enrichment circuit breaker %s -> %s", change.before.value, change.after.value)
            self.metrics.breaker_transitions.labels(change.after.value).inc()
            self.transitions.append(change)
        self.metrics.set_breaker_state(self.breaker.state.value)
