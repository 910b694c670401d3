"""Pure rules of enriching history through the Message Batches API (``ticktide enrich
backfill``): its price and limits, the prompt cache's minimum prefix, the token split
measured from usage, and the remembered batches (what a resumed run picks up).

A batch costs half the live price and is not subject to the per-minute rate limits of
live calls, so it is held to the daily limits of the same ``Limits`` at half price.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from domain.enrich.budget import Limits
from domain.enrich.cache import CACHE_KEY, MAX_NAME

BATCH_PRICE = 0.5
"""A Message Batches request costs this share of the same live request."""
MAX_BATCH_REQUESTS = 10_000
"""Most requests sent in one batch (the API takes 100,000 or 256 MB); the rest wait for the next run."""
MAX_BATCH_BYTES = 128 * 1024 * 1024
"""Most request bytes in one batch (the API's ceiling is 256 MB)."""
CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A request's custom_id, as the API accepts it."""
BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
STATE_VERSION = 1


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix the model's prompt cache keeps (Anthropic's prompt-caching
    documentation): 4096 tokens for Haiku 4.5 and Opus 4.5/4.6, 2048 for Sonnet 4.6 and
    the Haiku 3 models, 1024 for the other Sonnet and Opus models."""
    name = model.lower()
    if re.search(r"haiku-4|opus-4-[56]", name):
        return 4096
    if re.search(r"haiku|sonnet-4-6", name):
        return 2048
    return 1024


def batch_limits(limits: Limits) -> Limits:
    """The limits a batch is held to: the daily tokens and dollars at the batch price; no
    per-minute limits (one batch is one request, processed within 24 hours)."""
    return replace(limits, requests_per_min=0, input_tokens_per_min=0, output_tokens_per_min=0,
                   usd_per_mtok_in=limits.usd_per_mtok_in * BATCH_PRICE,
                   usd_per_mtok_out=limits.usd_per_mtok_out * BATCH_PRICE)


@dataclass(frozen=True)
class TokenSplit:
    """Tokens an API usage reports: input uncached, written to and read from the prompt
    cache, and output."""

    uncached: int = 0
    cache_write: int = 0
    cache_read: int = 0
    output: int = 0

    @property
    def input_tokens(self) -> int:
        """Every input token, however it was billed."""
        return self.uncached + self.cache_write + self.cache_read

    def __add__(self, other: TokenSplit) -> TokenSplit:
        return TokenSplit(self.uncached + other.uncached, self.cache_write + other.cache_write,
                          self.cache_read + other.cache_read, self.output + other.output)

    def per_event(self, events: int) -> dict[str, float]:
        """The input split per enriched event (zeros for none)."""
        n = max(1, events)
        return {"cache_read": self.cache_read / n, "cache_write": self.cache_write / n,
                "uncached": self.uncached / n}


class BadState(ValueError):
    """A remembered batch that cannot be trusted (a broken or edited state file)."""


Item = tuple[str, str]
"""One asked item: (cache key, subject id), numbered in the prompt by its position."""


@dataclass(frozen=True)
class PendingBatch:
    """A batch created and not yet written back: enough to pick it up in another run."""

    batch_id: str
    created_at: str
    model: str
    topic_prefix: str
    requests: dict[str, tuple[Item, ...]]  # custom_id -> its items, in prompt order

    def to_json(self) -> dict[str, Any]:
        """The JSON form kept in the state file."""
        return {"id": self.batch_id, "created_at": self.created_at, "model": self.model,
                "topic_prefix": self.topic_prefix,
                "requests": {cid: [list(item) for item in items] for cid, items in self.requests.items()}}

    @classmethod
    def from_json(cls, data: Any) -> PendingBatch:
        """A remembered batch; BadState naming what is wrong."""
        if not isinstance(data, dict):
            raise BadState("a batch is not an object")
        names = {name: data.get(name) for name in ("id", "created_at", "model", "topic_prefix")}
        for name, value in names.items():
            if not isinstance(value, str) or len(value) > MAX_NAME:
                raise BadState(f"{name} is not a string of at most {MAX_NAME} characters")
        if not BATCH_ID.fullmatch(names["id"] or ""):
            raise BadState("the batch id is not an id")
        requests = data.get("requests")
        if not isinstance(requests, dict) or not 0 < len(requests) <= MAX_BATCH_REQUESTS:
            raise BadState("requests is not a map of 1 to 10000 requests")
        parsed: dict[str, tuple[Item, ...]] = {}
        for custom_id, items in requests.items():
            if not CUSTOM_ID.fullmatch(custom_id) or not isinstance(items, list) or not items:
                raise BadState(f"request {custom_id[:70]!r} is not a custom id with items")
            parsed[custom_id] = tuple(_item(item) for item in items)
        return cls(str(names["id"]), str(names["created_at"]), str(names["model"]),
                   str(names["topic_prefix"]), parsed)


def _item(value: Any) -> Item:
    if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value)
            or not CACHE_KEY.fullmatch(value[0]) or not 0 < len(value[1]) <= MAX_NAME):
        raise BadState("an item is not [cache key, subject id]")
    return value[0], value[1]


def state_json(batches: list[PendingBatch]) -> dict[str, Any]:
    """The state file's content."""
    return {"version": STATE_VERSION, "batches": [b.to_json() for b in batches]}


def state_from_json(data: Any) -> list[PendingBatch]:
    """The batches a state file remembers; BadState if it is not one."""
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION or not isinstance(data.get("batches"), list):
        raise BadState(f"not a version {STATE_VERSION} backfill state")
    return [PendingBatch.from_json(b) for b in data["batches"]]
