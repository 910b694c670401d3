"""The Message Batches endpoints of the fake Anthropic API (tests/fakes/anthropic_server.py):
``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}`` and
``GET /v1/messages/batches/{id}/results`` (JSON lines), as the real ``anthropic`` client
calls them.

A batch is ``in_progress`` for its first ``polls_to_end`` looks, then ``ended`` (never,
while ``hold`` is set). Each request's outcome is scripted in order (``script``):
succeeded, errored, expired, canceled, or invalid (succeeded with out-of-range answers);
unscripted requests succeed. ``extra_results`` are appended to every results file (a
result for a request nobody asked, a line the client cannot read). Answers are the live
fake's (``message_body``): the same item, the same answer. Batch requests are not live
calls: the live counters (``state.calls``, ``state.requests``) do not see them.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

OUTCOMES = ("succeeded", "errored", "expired", "canceled", "invalid")
CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class FakeBatch:
    """One batch and what it will answer."""

    batch_id: str
    requests: list[dict[str, Any]]
    outcomes: list[str]
    created_at: datetime
    looks: int = 0
    ended: bool = False


@dataclass
class Batches:
    """The batches the fake holds, and how it answers them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    queue: deque[str] = field(default_factory=deque)
    extra_results: list[bytes] = field(default_factory=list)
    polls_to_end: int = 1
    hold: bool = False
    creates: int = 0
    looks: int = 0
    result_reads: int = 0
    cache: dict[str, int] = field(default_factory=dict)  # the prompt cache over batch requests

    def script(self, *outcomes: str) -> None:
        """The outcomes of the next requests, in order."""
        unknown = set(outcomes) - set(OUTCOMES)
        assert not unknown, f"unknown outcomes {unknown}"
        with self.lock:
            self.queue.extend(outcomes)

    def items(self) -> list[dict[str, Any]]:
        """Every item asked in any batch request so far."""
        from tests.fakes.anthropic_server import _items
        with self.lock:
            return [item for b in self.batches.values() for r in b.requests for item in _items(r["params"])]

    def create(self, body: Any) -> tuple[int, dict[str, Any]]:
        """POST /v1/messages/batches."""
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return 400, _error("invalid_request_error", "requests: a non-empty list is required")
        ids = [r.get("custom_id") if isinstance(r, dict) else None for r in requests]
        if any(not isinstance(i, str) or not CUSTOM_ID.fullmatch(i) for i in ids) or len(set(ids)) != len(ids):
            return 400, _error("invalid_request_error", "custom_id: unique ids of [A-Za-z0-9_-]{1,64} required")
        if any(not isinstance(r.get("params"), dict) or "messages" not in r["params"] for r in requests):
            return 400, _error("invalid_request_error", "params: a Messages request is required")
        with self.lock:
            self.creates += 1
            batch_id = f"msgbatch_fake{self.creates:04d}"
            outcomes = [self.queue.popleft() if self.queue else "succeeded" for _ in requests]
            self.batches[batch_id] = FakeBatch(batch_id, requests, outcomes, datetime.now(UTC))
            return 200, self._json(self.batches[batch_id], "")

    def retrieve(self, batch_id: str, base_url: str) -> tuple[int, dict[str, Any]]:
        """GET /v1/messages/batches/{id}: one look (the batch ends after ``polls_to_end``)."""
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, _error("not_found_error", f"no batch {batch_id}")
            self.looks += 1
            batch.looks += 1
            if not self.hold and batch.looks >= self.polls_to_end:
                batch.ended = True
            return 200, self._json(batch, base_url)

    def results(self, state: Any, batch_id: str) -> tuple[int, bytes]:
        """GET /v1/messages/batches/{id}/results: one JSON line per request, then the extras."""
        from tests.fakes.anthropic_server import message_body
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None or not batch.ended:
                return 404, json.dumps(_error("not_found_error", f"no results for {batch_id}")).encode()
            self.result_reads += 1
            lines = []
            for request, outcome in zip(batch.requests, batch.outcomes, strict=True):
                params = request["params"]
                if outcome in ("succeeded", "invalid"):
                    fault = "invalid" if outcome == "invalid" else "normal"
                    message = message_body(state, params, len(json.dumps(params)), fault, self.cache)
                    result: dict[str, Any] = {"type": "succeeded", "message": message}
                elif outcome == "errored":
                    result = {"type": "errored", "error": _error("invalid_request_error", "max_tokens: too large")}
                else:
                    result = {"type": outcome}
                lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}).encode())
            return 200, b"\n".join([*lines, *self.extra_results]) + b"\n"

    @staticmethod
    def _json(batch: FakeBatch, base_url: str) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if batch.ended:
            for outcome in batch.outcomes:
                counts["succeeded" if outcome == "invalid" else outcome] += 1
        else:
            counts["processing"] = len(batch.requests)
        return {"id": batch.batch_id, "type": "message_batch",
                "processing_status": "ended" if batch.ended else "in_progress", "request_counts": counts,
                "created_at": batch.created_at.isoformat(), "ended_at": None, "archived_at": None,
                "cancel_initiated_at": None, "expires_at": (batch.created_at + timedelta(days=1)).isoformat(),
                "results_url": f"{base_url}/v1/messages/batches/{batch.batch_id}/results" if batch.ended else None}


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
