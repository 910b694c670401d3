"""The Claude client behind a small interface: ``Assessor.assess(contexts, deadline, meter)``.

Real implementation on the ``anthropic`` SDK. The SDK's own retries are off (each attempt
must be reserved on the budget before it is sent, and the SDK would wait out any
retry-after); this module retries up to ``max_retries`` times by the API's own signals
(``streams.claude.retry``: ``x-should-retry``, ``retry-after-ms``/``retry-after`` within
``retry_after_cap_s``, jittered backoff), never past the deadline, and never retries a
spend-limit or billing refusal (known by status and error type/code). The
model must call the one tool (its input schema is the assessment schema, it does
nothing); the answer is validated, items with an invalid answer are asked once more, then
they are left to the caller's fallback. Stop reasons refusal and max_tokens are handled.

Money: every HTTP attempt (first ask, re-ask, each retry) is booked on the ``meter``:
reserved at its worst case before it is sent (not sent if that does not fit), settled
with the usage the response (or an error body) reports, kept as reserved otherwise.
Because the retries are ours, no attempt goes out that was not reserved.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from domain.enrich.assessment import TOOL_SCHEMA, Assessment, InvalidAnswer, validate_answer
from domain.enrich.batch import TokenSplit, min_cacheable_tokens
from domain.enrich.budget import OverBudget, Reservation, worst_input_tokens
from domain.enrich.context import CHARS_PER_TOKEN, SYSTEM_PROMPT, Context, Subject, estimate_tokens, user_message
from streams.claude.retry import is_spend_limit, retry_delay, should_retry
from streams.errors import TickTideError


def _lazy_module(name: str) -> Any:
    """``name`` imported on first attribute access (importlib's LazyLoader recipe)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, f"{name} is not installed"
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import anthropic
    from anthropic.types import ToolParam
else:  # the SDK costs ~2 s of CPU to import: only a worker that has an API key (makes a client) pays it
    anthropic = _lazy_module("anthropic")

log = logging.getLogger(__name__)
TOOL_NAME = "record_assessments"
TOOL: ToolParam = {"name": TOOL_NAME, "description": "Record one assessment per item id. Has no other effect.",
        "input_schema": TOOL_SCHEMA}
PROMPT_TEXT = SYSTEM_PROMPT + json.dumps(TOOL)  # sent with every call, for token estimates


_SAMPLE = Subject(  # a typical item, to calibrate the chars-per-token estimate
    event_id="sample", kind="indicators", symbol="BTCUSDT", event_time_us=0,
    facts={"kind": "indicators", "symbol": "BTCUSDT", "interval": "1m", "close": 64012.5,
           "ema_fast": 63990.1, "ema_slow": 63870.4, "rsi": 61.2, "atr": 85.3,
           "realised_volatility": 0.0123, "volume_zscore": 1.7})


class ClaudeUnavailable(TickTideError):
    """No usable answer could be had from the API (the reason is a short label)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class BatchAnswer:
    """What one ``assess`` got: assessments by item id, why the others have none (a
    detail in ``problems``; a short label in ``reasons`` when it is not an invalid
    answer), usage."""

    assessments: dict[str, Assessment] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0


Usage = tuple[int, int]
"""(input tokens, output tokens) an API response reported."""


class Meter(Protocol):
    """Books every API attempt on the budget."""

    def reserve(self, input_tokens: int, output_tokens: int) -> Reservation:
        """Hold an attempt's worst case; OverBudget if it must not be sent."""
        ...

    def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Book what the attempt used (None: nothing reported, the reservation stands)."""
        ...


class Assessor(Protocol):
    """What the enrichment needs from Claude."""

    model: str

    async def assess(self, contexts: dict[str, Context], deadline: float, meter: Meter) -> BatchAnswer:
        """Assess every context (keyed by item id) before ``deadline`` (monotonic),
        booking each API attempt on ``meter``."""
        ...

    async def calibrate(self) -> float:
        """Characters per token of a typical prompt."""
        ...


def _status_reason(status: int) -> str:
    return {429: "rate_limited", 529: "overloaded"}.get(
        status, "server_error" if status >= 500 else "client_error")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_split(source: Any) -> TokenSplit | None:
    """The tokens a response or an error body reports, input split by the prompt cache
    (uncached, written, read); None without any."""
    usage = source.get("usage") if isinstance(source, dict) else getattr(source, "usage", None)
    if usage is None:
        return None
    names = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    fields = {n: usage.get(n) if isinstance(usage, dict) else getattr(usage, n, None) for n in names}
    if fields["input_tokens"] is None and fields["output_tokens"] is None:
        return None
    return TokenSplit(*(_count(fields[n]) for n in names))


def usage_of(source: Any) -> Usage | None:
    """The (input, output) tokens a response or an error body reports; None without any.
    Prompt-cache reads and writes count as input."""
    split = usage_split(source)
    return None if split is None else (split.input_tokens, split.output)


def message_params(model: str, max_tokens: int, message: str, cache_prefix: bool = False) -> dict[str, Any]:
    """The Messages API request of one prompt (live and batch alike): the system prompt, the
    forced tool call, the user turn. ``cache_prefix`` marks the fixed prefix (tools, then
    system) for the prompt cache: worth it only when it reaches the model's minimum
    (``domain.enrich.batch.min_cacheable_tokens``), else the API ignores the mark."""
    system: str | list[dict[str, Any]] = SYSTEM_PROMPT
    if cache_prefix:
        system = [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}]
    return {"model": model, "max_tokens": max_tokens, "system": system,
            "messages": [{"role": "user", "content": message}],
            "tools": [TOOL], "tool_choice": {"type": "tool", "name": TOOL_NAME}}


def read_answer(response: Any, item_ids: list[str]) -> tuple[dict[str, Assessment], dict[str, str], dict[str, str]]:
    """What a response says about the items: valid assessments by id, a problem for every
    other id, and a short reason where it is not an invalid answer (refusal, max_tokens)."""
    stop = getattr(response, "stop_reason", None)
    if stop == "refusal":
        return {}, dict.fromkeys(item_ids, "refusal"), dict.fromkeys(item_ids, "refusal")
    tool_input = next((block.input for block in getattr(response, "content", None) or []
                       if getattr(block, "type", None) == "tool_use"
                       and getattr(block, "name", None) == TOOL_NAME), None)
    try:
        valid, problems = validate_answer(tool_input, item_ids)
    except InvalidAnswer as exc:
        valid, problems = {}, dict.fromkeys(item_ids, str(exc))
    return valid, problems, dict.fromkeys(problems, "max_tokens") if stop == "max_tokens" else {}


class ClaudeClient:
    """``Assessor`` on the real ``anthropic`` SDK (AsyncAnthropic)."""

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None,
                 timeout_s: float = 20.0, max_retries: int = 2, retry_after_cap_s: float = 5.0,
                 max_output_tokens: int = 1024, jitter: Callable[[], float] = random.random,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.model = model
        self._jitter, self._wall_clock = jitter, wall_clock
        self.max_retries = max_retries
        self.retry_after_cap_s = retry_after_cap_s
        self.max_output_tokens = max_output_tokens
        self.timeout_s = timeout_s
        self.chars_per_token = CHARS_PER_TOKEN
        self.prefix_tokens = estimate_tokens(PROMPT_TEXT)  # counted by ``calibrate`` when it can
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url,
                                                timeout=timeout_s, max_retries=0)

    async def calibrate(self) -> float:
        """Characters per token of a sample prompt, from the count_tokens endpoint (kept
        at the default estimate when the endpoint is not there)."""
        sample = user_message({"0": Context(_SAMPLE)})
        try:
            counted = await self._client.messages.count_tokens(
                model=self.model, system=SYSTEM_PROMPT, tools=[TOOL],
                messages=[{"role": "user", "content": sample}], timeout=self.timeout_s)
            overhead = await self._client.messages.count_tokens(
                model=self.model, system=SYSTEM_PROMPT, tools=[TOOL],
                messages=[{"role": "user", "content": "x"}], timeout=self.timeout_s)
            tokens = counted.input_tokens - overhead.input_tokens
            if tokens > 0:
                self.chars_per_token = max(1.0, min(8.0, len(sample) / tokens))
            if overhead.input_tokens > 0:  # the prompt without data: the fixed prefix, and a token
                self.prefix_tokens = overhead.input_tokens
        except (anthropic.APIError, ValueError) as exc:
            log.info("count_tokens unavailable (%s); estimating %.1f chars/token", exc,
                     self.chars_per_token)
        return self.chars_per_token

    @property
    def cache_prefix(self) -> bool:
        """Is the fixed prefix long enough for the model's prompt cache?"""
        return self.prefix_tokens >= min_cacheable_tokens(self.model)

    async def _attempt(self, message: str, timeout: float, meter: Meter) -> Any:
        """One HTTP attempt, reserved before it is sent and settled after."""
        try:
            reservation = meter.reserve(worst_input_tokens(PROMPT_TEXT + message), self.max_output_tokens)
        except OverBudget as over:
            raise ClaudeUnavailable(f"budget_{over.limit}") from None
        usage: Usage | None = None
        try:
            response = await self._client.messages.create(
                **message_params(self.model, self.max_output_tokens, message, self.cache_prefix), timeout=timeout)
            usage = usage_of(response)
            return response
        except anthropic.APIStatusError as error:
            usage = usage_of(error.body)
            raise
        finally:  # also on a time-out or a cancel: no usage, the reservation stands
            meter.settle(reservation, usage)

    async def _create(self, contexts: dict[str, Context], deadline: float, meter: Meter) -> Any:
        message = user_message(contexts)
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                raise ClaudeUnavailable("deadline")
            headers: Any = {}
            try:
                return await self._attempt(message, min(self.timeout_s, remaining), meter)
            except anthropic.APIStatusError as error:
                if is_spend_limit(error.status_code, error.body):
                    raise ClaudeUnavailable("spend_limit", error.message) from None
                reason, headers = _status_reason(error.status_code), error.response.headers
                if not should_retry(error.status_code, headers):
                    raise ClaudeUnavailable(reason, error.message) from None
            except anthropic.APITimeoutError:
                reason = "timeout"
            except anthropic.APIConnectionError as error:
                reason = "connection"
                log.debug("connection error: %s", error)
            except (anthropic.APIResponseValidationError, ValueError) as error:
                reason = "malformed_response"
                log.debug("malformed response: %s", error)
            attempt += 1
            if attempt > self.max_retries:
                raise ClaudeUnavailable(reason)
            pause = retry_delay(attempt, headers, cap_s=self.retry_after_cap_s, now=self._wall_clock(),
                                rand=self._jitter())
            if pause is None:
                raise ClaudeUnavailable(reason, f"the API asks to wait longer than {self.retry_after_cap_s:g} s")
            if time.monotonic() + pause >= deadline:
                raise ClaudeUnavailable(reason)
            await asyncio.sleep(pause)

    async def assess(self, contexts: dict[str, Context], deadline: float, meter: Meter) -> BatchAnswer:
        """Ask once; ask again for the items whose answer was invalid; raise
        ClaudeUnavailable when the API gave no usable response at all (a re-ask that
        fails leaves the first answers standing)."""
        answer = BatchAnswer()
        pending = dict(contexts)
        for _ in range(2):
            try:
                response = await self._create(pending, deadline, meter)
            except ClaudeUnavailable as error:
                if not answer.calls:
                    raise
                answer.reasons = dict.fromkeys(pending, error.reason)
                return answer
            answer.calls += 1
            used = usage_of(response) or (0, 0)
            answer.input_tokens += used[0]
            answer.output_tokens += used[1]
            valid, problems, answer.reasons = read_answer(response, list(pending))
            if getattr(response, "stop_reason", None) == "refusal":
                answer.problems.update(problems)
                return answer
            answer.assessments.update(valid)
            answer.problems = problems
            pending = {item_id: pending[item_id] for item_id in problems}
            if not pending:
                break
        return answer
