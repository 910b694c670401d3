"""Whether and when to retry a Messages API call: the API's own signals first. Pure.

The rules are the ``anthropic`` SDK's (``_base_client``: ``_should_retry``,
``_parse_retry_after_header``, ``_calculate_retry_timeout``), which the client cannot use
as they are: the SDK's own retries are off because every attempt must be reserved on the
budget first, and the SDK waits out any retry-after however long and jitters only its own
backoff. Here:

- ``x-should-retry: true|false`` decides when present; else 408, 409, 429 and 5xx retry.
- ``retry-after-ms``, else ``retry-after`` in seconds or as an HTTP date, is the least
  wait. Within the cap it is honoured, plus up to 25 % jitter (never past the cap), so that
  workers told the same time do not all come back at once; beyond the cap the call is not
  retried (coming back sooner than asked only earns another refusal).
- Without a retry-after: exponential backoff from 0.5 s, at most the cap, 0-25 % jitter.
- A spend-limit or billing refusal is known by status and error type/code, never by the
  words of its message (their wording changes); it is never retried.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from typing import Any

INITIAL_BACKOFF_S = 0.5
JITTER = 0.25
SPEND_LIMIT_CODES = frozenset({
    "enforced_spend_limit_reached",  # the organisation's tier's monthly spend limit (429 rate_limit_error)
    "contract_spend_limit_reached",
    "linked_organization_spend_limit_reached",
})


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """The API's ``x-should-retry`` when it says, else the status: 408, 409, 429, 5xx."""
    said = headers.get("x-should-retry")
    if said == "true":
        return True
    if said == "false":
        return False
    return status in (408, 409, 429) or status >= 500


def retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the API asks to wait (``retry-after-ms``, ``retry-after`` seconds or HTTP
    date, relative to ``now``, epoch seconds); None when it asks nothing usable."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, "")) / scale
        except ValueError:
            continue
        if math.isfinite(value):
            return max(0.0, value)
    date = email.utils.parsedate_tz(headers.get("retry-after", ""))
    return None if date is None else max(0.0, email.utils.mktime_tz(date) - now)


def retry_delay(attempt: int, headers: Mapping[str, str], *, cap_s: float, now: float,
                rand: float) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry); None when the
    API asks for longer than ``cap_s``. ``rand`` in [0, 1) spreads the retries of several
    workers (jitter)."""
    asked = retry_after_s(headers, now)
    if asked is not None and asked > 0:  # 0 or a date past: the backoff, as the SDK does
        if asked > cap_s:
            return None
        return asked + (min(cap_s, asked * (1 + JITTER)) - asked) * rand
    backoff = min(INITIAL_BACKOFF_S * 2.0 ** (min(attempt, 32) - 1), cap_s)
    return backoff * (1 - JITTER * rand)


def error_fields(body: Any) -> tuple[str | None, str | None]:
    """(error.type, error.details.error_code) of a Messages API error body
    ``{"type": "error", "error": {"type": ..., "message": ..., "details": {"error_code": ...}}}``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    kind = error.get("type")
    return (kind if isinstance(kind, str) else None), (code if isinstance(code, str) else None)


def is_spend_limit(status: int, body: Any) -> bool:
    """A refusal for money, not load: 402 / ``billing_error``, or a spend-limit error code
    (a 429 ``rate_limit_error`` carrying ``enforced_spend_limit_reached`` is one)."""
    kind, code = error_fields(body)
    return status == 402 or kind == "billing_error" or code in SPEND_LIMIT_CODES
