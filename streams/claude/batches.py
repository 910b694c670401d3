"""The Message Batches API on the ``anthropic`` SDK: create a batch of enrichment prompts,
follow it, read its results (``client.messages.batches.create/retrieve/results``).

A request is the live call's request (``message_params``, the same prompt), under a
``custom_id``; its answer is read like a live answer (``read_answer``). Creating is never
retried (a create that timed out may have been accepted: retrying could pay twice);
following and reading are (the SDK's own retries: they change nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic

from domain.enrich.assessment import Assessment
from domain.enrich.batch import TokenSplit
from domain.enrich.context import Context, user_message
from streams.claude.client import ClaudeUnavailable, message_params, read_answer, usage_split
from streams.claude.retry import is_spend_limit
from streams.settings import Settings

RESULT_KINDS = ("succeeded", "errored", "expired", "canceled")


@dataclass(frozen=True)
class BatchStatus:
    """What the API says about a batch."""

    batch_id: str
    processing_status: str  # in_progress | canceling | ended
    counts: dict[str, int] = field(default_factory=dict)  # processing, succeeded, errored, ...

    @property
    def ended(self) -> bool:
        """Has processing ended (every request succeeded, errored, expired or was canceled)?"""
        return self.processing_status == "ended"


@dataclass(frozen=True)
class RequestResult:
    """One line of a batch's results: its custom_id, kind (succeeded, errored, expired,
    canceled, or unreadable), and for a success the items' answers."""

    custom_id: str
    kind: str
    assessments: dict[str, Assessment] = field(default_factory=dict)  # item id -> valid answer
    problems: dict[str, str] = field(default_factory=dict)  # item id -> why it has none
    tokens: TokenSplit = field(default_factory=TokenSplit)
    detail: str = ""


def _status(batch: Any) -> BatchStatus:
    counts = getattr(batch, "request_counts", None)
    names = ("processing", "succeeded", "errored", "canceled", "expired")
    found = {n: getattr(counts, n, 0) for n in names} if counts is not None else {}
    return BatchStatus(str(batch.id), str(batch.processing_status),
                       {n: v for n, v in found.items() if isinstance(v, int)})


def _failure(error: anthropic.APIError, doing: str) -> ClaudeUnavailable:
    if isinstance(error, anthropic.APIStatusError):
        reason = "spend_limit" if is_spend_limit(error.status_code, error.body) else f"http_{error.status_code}"
        return ClaudeUnavailable(reason, f"{doing}: {str(error.message)[:300]}")
    return ClaudeUnavailable(type(error).__name__, f"{doing}: {str(error)[:300]}")


class BatchClient:
    """Message Batches of enrichment prompts, on the real SDK (sync: a CLI drives it)."""

    def __init__(self, *, api_key: str, model: str, base_url: str | None = None, timeout_s: float = 60.0,
                 max_output_tokens: int = 1024, cache_prefix: bool = False) -> None:
        self.model = model
        self.max_output_tokens = max_output_tokens
        self.cache_prefix = cache_prefix
        self._creator = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)
        self._reader = self._creator.with_options(max_retries=3)

    def request(self, custom_id: str, contexts: dict[str, Context]) -> dict[str, Any]:
        """One batch request: the live prompt of these contexts (keyed by item id)."""
        params = message_params(self.model, self.max_output_tokens, user_message(contexts), self.cache_prefix)
        return {"custom_id": custom_id, "params": params}

    def create(self, requests: list[dict[str, Any]]) -> BatchStatus:
        """Send a batch (once, never retried); ClaudeUnavailable if it was refused or failed."""
        try:
            return _status(self._creator.messages.batches.create(requests=requests))  # type: ignore[arg-type]
        except anthropic.APIError as error:
            raise _failure(error, "creating the batch") from None

    def retrieve(self, batch_id: str) -> BatchStatus:
        """The batch's status now."""
        try:
            return _status(self._reader.messages.batches.retrieve(batch_id))
        except anthropic.APIError as error:
            raise _failure(error, f"following batch {batch_id}") from None

    def results(self, batch_id: str, items: dict[str, list[str]]) -> Iterator[RequestResult]:
        """The results of an ended batch, read like live answers; ``items`` are the item ids
        each custom_id asked. A file that stops making sense ends with one result of kind
        ``unreadable`` and no custom_id; ClaudeUnavailable if it cannot be fetched."""
        try:
            for line in self._reader.messages.batches.results(batch_id):
                yield _result(line, items)
        except anthropic.APIError as error:
            raise _failure(error, f"reading the results of {batch_id}") from None
        except ValueError as error:  # not JSON lines
            yield RequestResult("", "unreadable", detail=f"the results stop making sense: {str(error)[:200]}")


def _result(line: Any, items: dict[str, list[str]]) -> RequestResult:
    custom_id = str(getattr(line, "custom_id", ""))[:64]
    result = getattr(line, "result", None)
    kind = str(getattr(result, "type", "unreadable"))
    if kind not in RESULT_KINDS:
        return RequestResult(custom_id, "unreadable", detail=f"a result of type {kind[:40]!r}")
    if kind == "errored":
        error = getattr(getattr(result, "error", None), "error", None)
        detail = f"{getattr(error, 'type', 'error')}: {str(getattr(error, 'message', ''))[:200]}"
        return RequestResult(custom_id, kind, detail=detail)
    if kind != "succeeded" or custom_id not in items:
        return RequestResult(custom_id, kind)
    message = getattr(result, "message", None)
    valid, problems, reasons = read_answer(message, items[custom_id])
    return RequestResult(custom_id, kind, valid, {k: reasons.get(k, v) for k, v in problems.items()},
                         usage_split(message) or TokenSplit())


def batch_client_from(settings: Settings, cache_prefix: bool) -> BatchClient | None:
    """The batch client of the settings, or None without an API key."""
    if settings.anthropic_api_key is None:
        return None
    return BatchClient(api_key=settings.anthropic_api_key.get_secret_value(), model=settings.anthropic_model,
                       base_url=settings.anthropic_base_url, timeout_s=max(60.0, settings.anthropic_timeout_s),
                       max_output_tokens=settings.enrich_max_output_tokens, cache_prefix=cache_prefix)
