"""Which items may share one Claude call (pure).

A headline is untrusted text: whatever it says, it must not steer the assessment of an
item it did not come with. So news items share a call only with news of the same source
and the same symbols; items that carry nothing but our own numbers (anomalies, indicator
snapshots) may share a call with each other, never with news.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

from domain.enrich.context import Context

Key = TypeVar("Key", bound=Hashable)


def batch_group(context: Context) -> tuple[str, ...]:
    """The group of items a context may share a call with."""
    subject = context.subject
    if subject.kind == "news":
        symbols = subject.facts.get("symbols") or ([subject.symbol] if subject.symbol else [])
        return ("news", str(subject.facts.get("source", "")), *sorted(map(str, symbols)))
    return ("facts",)


def plan_batches(contexts: Mapping[Key, Context], batch_max: int) -> list[list[Key]]:
    """The keys in calls of at most ``batch_max`` items, each call within one group
    (groups in order of first appearance, items in their order)."""
    groups: dict[tuple[str, ...], list[Key]] = {}
    for key, context in contexts.items():
        groups.setdefault(batch_group(context), []).append(key)
    size = max(1, batch_max)
    return [keys[i:i + size] for keys in groups.values() for i in range(0, len(keys), size)]
