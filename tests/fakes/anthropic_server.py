"""A fake Anthropic Messages API: real HTTP on 127.0.0.1, used through the real
``anthropic`` client (``base_url=server.url``).

Answers ``POST /v1/messages`` with a forced tool call assessing every item of the
request's ``<data>`` block, and ``POST /v1/messages/count_tokens``. Faults are scripted:
``script([...])`` queues faults for the next calls, ``mix({...}, seed)`` draws one per call.

Every answer reports its usage (input tokens ~ request bytes / 4, output tokens ~ answer
bytes / 4 or ``output_tokens`` if set, never more than the request's ``max_tokens``); the
server keeps each reported usage in ``state.usage`` and each request's items in
``state.requests``. ``error_usage`` makes error answers carry a usage too.

Serves the Message Batches endpoints too (tests/fakes/anthropic_batches.py: ``server.batches``).

Faults: normal, rate_limited (429 rate_limit_error + retry-after ``retry_after``),
spend_limit (429 rate_limit_error with ``details.error_code`` enforced_spend_limit_reached, as
the API sends when the tier's monthly spend limit is reached), billing (402 billing_error),
overloaded (529), server_error (500), slow (answers after ``slow_s``), malformed (200, not
JSON), refusal, max_tokens (truncated tool input), invalid (out-of-range values), injected
(a model that obeys injected instructions in headlines: extra fields, other ids, leaked
prompt, ...). Error answers are the API's error JSON; ``state.headers[fault]`` adds response
headers to a fault (``x-should-retry``, ``retry-after-ms``, ...) and ``state.messages[fault]``
replaces its message. ``state.times`` has the arrival time (monotonic) of every messages call.

    with FakeAnthropic() as server:
        server.mix({"normal": 0.7, "overloaded": 0.3}, seed=1)
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.fakes.anthropic_batches import Batches

FAULTS = ("normal", "rate_limited", "spend_limit", "billing", "overloaded", "server_error", "slow",
          "malformed", "refusal", "max_tokens", "invalid", "injected")
ERRORS = {  # fault -> (status, error.type, message, error.details)
    "rate_limited": (429, "rate_limit_error", "Number of requests has exceeded your rate limit.", None),
    "spend_limit": (429, "rate_limit_error", "You have reached your specified API usage limits. You will "
                    "regain access on the 1st.", {"error_code": "enforced_spend_limit_reached"}),
    "billing": (402, "billing_error", "There is an issue with your billing or payment information.", None),
    "overloaded": (529, "overloaded_error", "Overloaded", None),
    "server_error": (500, "api_error", "Internal server error", None),
}
REGIMES = ("trending", "ranging", "volatile", "unknown")


def _items(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON items between <data> and </data> of the user turn."""
    content = request["messages"][-1]["content"]
    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
    block = text.split("<data>\n", 1)[1].rsplit("\n</data>", 1)[0]
    return [json.loads(line) for line in block.splitlines() if line.strip()]


def honest_assessment(item: dict[str, Any]) -> dict[str, Any]:
    """A deterministic answer for one item (same item, same answer)."""
    body = {k: v for k, v in item.items() if k != "id"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    return {"id": item["id"], "regime": REGIMES[digest[0] % 4],
            "sentiment": round(digest[1] / 255 * 2 - 1, 3),
            "risk_flags": ["volume_spike"] if item.get("rule") == "volume_zscore" else [],
            "confidence": round(digest[2] / 255, 3), "rationale": f"Assessed {item.get('kind')}."}


def injected_assessment(item: dict[str, Any], system: str) -> list[dict[str, Any]]:
    """What a model that obeyed the headline's instructions might answer."""
    answer = honest_assessment(item)
    text = str(item.get("headline", "")).lower()
    if "extra" in text or "field" in text:
        answer["trade_now"] = True
    if "ignore" in text or "schema" in text:
        answer["regime"] = "to_the_moon"
    if "score" in text or "sentiment" in text:
        answer["sentiment"] = 7.5
    if "prompt" in text or "reveal" in text:
        answer["rationale"] = system
    if "flag" in text:
        answer["risk_flags"] = ["buy_everything"]
    answers = [answer]
    if "other" in text or "symbol" in text:
        answers.append({**honest_assessment(item), "id": "0", "sentiment": -1.0})
        answers.append({**honest_assessment(item), "id": "999"})
    return answers


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: deque[str] = deque()
        self.weights: dict[str, float] = {"normal": 1.0}
        self.rng = random.Random(0)
        self.calls: Counter[str] = Counter()
        self.count_token_calls = 0
        self.items = 0
        self.slow_s = 3.0
        self.retry_after: str | None = "0.2"  # the rate_limited fault's retry-after header
        self.headers: dict[str, dict[str, str]] = {}  # fault -> extra response headers
        self.messages: dict[str, str] = {}  # fault -> its error message instead of the usual one
        self.times: list[float] = []  # monotonic arrival time of every messages request
        self.output_tokens: int | None = None  # a verbose model: report this many (capped)
        self.error_usage: dict[str, int] | None = None  # a usage in error bodies
        self.usage: list[tuple[int, int]] = []  # (input, output) of every answer and error reported
        self.requests: list[list[dict[str, Any]]] = []  # the items of every messages request
        self.cache_min_tokens = 1024  # the shortest prefix the "model" caches
        self.bytes_per_token = 4  # what count_tokens counts (another tokenizer: another figure)
        self.prompt_cache: dict[str, int] = {}  # prefix -> times seen (live calls)

    def next_fault(self) -> str:
        with self.lock:
            if self.queue:
                fault = self.queue.popleft()
            else:
                names = list(self.weights)
                fault = self.rng.choices(names, [self.weights[n] for n in names])[0]
            self.calls[fault] += 1
            return fault


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, kind: str, message: str, details: dict[str, str] | None = None,
               **headers: str) -> None:
        error: dict[str, Any] = {"type": kind, "message": message}
        if details is not None:
            error["details"] = details
        body: dict[str, Any] = {"type": "error", "error": error, "request_id": "req_fake"}
        state = self.server.state
        if state.error_usage is not None and status != 401:
            body["usage"] = dict(state.error_usage)
            with state.lock:
                state.usage.append((state.error_usage.get("input_tokens", 0),
                                    state.error_usage.get("output_tokens", 0)))
        self._send(status, json.dumps(body).encode(), headers)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        raw = self.rfile.read(length)
        request = json.loads(raw)
        state = self.server.state
        if not (self.headers.get("x-api-key") or self.headers.get("authorization")):
            self._error(401, "authentication_error", "an x-api-key or authorization header is required")
            return
        if self.path.split("?")[0] == "/v1/messages/batches":
            status, body = self.server.batches.create(request)
            self._send(status, json.dumps(body).encode())
            return
        if self.path.startswith("/v1/messages/count_tokens"):
            with state.lock:
                state.count_token_calls += 1
            self._send(200, json.dumps({"input_tokens": len(raw) // state.bytes_per_token}).encode())
            return
        if not self.path.startswith("/v1/messages"):
            self._error(404, "not_found_error", f"no route {self.path}")
            return
        with state.lock:
            state.requests.append(_items(request))
            state.times.append(time.monotonic())
        fault = state.next_fault()
        if fault in ERRORS:
            status, kind, message, details = ERRORS[fault]
            headers = {"retry-after": state.retry_after} if fault == "rate_limited" and state.retry_after else {}
            headers.update(state.headers.get(fault, {}))
            self._error(status, kind, state.messages.get(fault, message), details, **headers)
        elif fault == "malformed":
            self._send(200, b'{"id": "msg_1", "type": "message", "content": [')
        else:
            if fault == "slow":
                time.sleep(state.slow_s)
            self._answer(request, raw, fault)

    def do_GET(self) -> None:
        if not (self.headers.get("x-api-key") or self.headers.get("authorization")):
            self._error(401, "authentication_error", "an x-api-key or authorization header is required")
            return
        found = re.fullmatch(r"/v1/messages/batches/([^/?]+)(/results)?(\?.*)?", self.path)
        if found is None:
            self._error(404, "not_found_error", f"no route {self.path}")
            return
        batches = self.server.batches
        if found.group(2):
            status, raw = batches.results(self.server.state, found.group(1))
            self.send_response(status)
            self.send_header("content-type", "application/binary" if status == 200 else "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        host, port = self.server.server_address[:2]
        status, body = batches.retrieve(found.group(1), f"http://{host}:{port}")
        self._send(status, json.dumps(body).encode())

    def _answer(self, request: dict[str, Any], raw: bytes, fault: str) -> None:
        state = self.server.state
        body = message_body(state, request, len(raw), fault, state.prompt_cache)
        usage = body["usage"]
        with state.lock:
            state.items += len(_items(request))
            state.usage.append((usage["input_tokens"], usage["output_tokens"]))
        self._send(200, json.dumps(body).encode())


def message_body(state: _State, request: dict[str, Any], size: int, fault: str,
                 cache: dict[str, int] | None = None) -> dict[str, Any]:
    """The Message a model answers ``request`` with (``size``: its bytes), under ``fault``.
    Usage: input ~ bytes / 4; with ``cache`` (prefix -> times seen) a system block marked
    cache_control whose prefix (tools, system) reaches ``state.cache_min_tokens`` is written
    to the prompt cache the first time and read after, as the API reports it."""
    items = _items(request)
    stop, content = "tool_use", []
    if fault == "refusal":
        stop = "refusal"
        content = [{"type": "text", "text": "I can't help with that."}]
    else:
        system = request["system"]
        text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
        if fault == "injected":
            answers = [a for item in items for a in injected_assessment(item, text)]
        else:
            answers = [honest_assessment(item) for item in items]
        if fault == "invalid":
            answers = [{**a, "sentiment": 3.0, "confidence": -1} for a in answers]
        tool_input: dict[str, Any] = {"assessments": answers}
        if fault == "max_tokens":
            stop, tool_input = "max_tokens", {}
        content = [{"type": "tool_use", "id": "toolu_1", "name": request["tools"][0]["name"],
                    "input": tool_input}]
    output = state.output_tokens if state.output_tokens is not None else len(json.dumps(content)) // 4
    usage = {"input_tokens": size // 4, "output_tokens": min(output, int(request["max_tokens"])),
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    marked = isinstance(request["system"], list) and any("cache_control" in b for b in request["system"])
    prefix = json.dumps([request["tools"], request["system"]])
    if cache is not None and marked and len(prefix) // 4 >= state.cache_min_tokens:
        seen = cache.get(prefix, 0)
        cache[prefix] = seen + 1
        usage["cache_read_input_tokens" if seen else "cache_creation_input_tokens"] = len(prefix) // 4
        usage["input_tokens"] = max(0, usage["input_tokens"] - len(prefix) // 4)
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": request["model"],
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State
    batches: Batches

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is what the "slow" fault is for


class FakeAnthropic:
    """The fake API on a free port, served from a background thread."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state = _State()
        self._server.batches = self.batches = Batches()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, *faults: str) -> None:
        """Answer the next calls with these faults, in order."""
        with self.state.lock:
            self.state.queue.extend(faults)

    def mix(self, weights: dict[str, float], seed: int = 0) -> None:
        """After the script, draw each call's fault from these weights."""
        unknown = set(weights) - set(FAULTS)
        assert not unknown, f"unknown faults {unknown}"
        with self.state.lock:
            self.state.weights, self.state.rng = dict(weights), random.Random(seed)

    @property
    def calls(self) -> int:
        """Messages calls answered so far (any fault)."""
        with self.state.lock:
            return sum(self.state.calls.values())

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":  # by hand: `python -m tests.fakes.anthropic_server [PORT]`, then
    # TICKTIDE_ANTHROPIC_BASE_URL=http://127.0.0.1:PORT TICKTIDE_ANTHROPIC_API_KEY=x ticktide dev
    import sys

    server = _Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), _Handler)
    server.state = _State()
    server.batches = Batches()
    print(f"fake Anthropic API on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
