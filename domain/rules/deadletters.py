"""What a dead letter may be re-sent to, and when a re-send needs ``--force`` (pure).

A dead letter names its source topic itself, and system.deadletter is written by
producers we do not control: the name is checked, never trusted. Its original bytes go
back only to a topic of this app instance (a catalog topic, with the settings' topic
prefix), never to another team's topic, an internal topic or the dead-letter topics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

NEVER_TARGETS = frozenset({"system.deadletter", "system.deadletter_replays"})
"""Catalog topics a letter is never re-sent to (nothing consumes them)."""

TRADES = "market.trades"
REFUSING_AGENTS = frozenset({"market.trades", "trade_batcher"})
"""The candle fold, and the trade batcher of versions before the trade reader (its letters
may still be in the topic)."""
NOT_FOLDED_REASONS = frozenset({"undecodable", "invalid_value"})
"""Reasons for which the candle fold refused a trade before folding it. Any other
market.trades letter may already be in the candles, and the fold recognises trades by
their offset on market.trades, which a re-sent copy does not share: it would count twice."""


def catalog_name(source_topic: str, prefix: str, catalog: Iterable[str]) -> str | None:
    """The catalog name of ``source_topic`` for an app whose topics carry ``prefix``;
    None if it is not one of the app's catalog topics or may not be written to."""
    if not source_topic.startswith(prefix):
        return None
    name = source_topic[len(prefix):]
    return name if name in set(catalog) and name not in NEVER_TARGETS else None


@dataclass(frozen=True)
class Verdict:
    """Whether a letter may be re-sent; if not, why (one line) and whether --force helps."""

    allowed: bool
    why: str = ""
    forceable: bool = False


def judge(*, source_topic: str, agent: str, reason: str, has_value: bool, prefix: str,
          catalog: Iterable[str], replayed_at: str | None, force: bool) -> Verdict:
    """May this letter be re-sent now? ``replayed_at``: when it was re-sent before, if it was."""
    name = catalog_name(source_topic, prefix, catalog)
    if name is None:
        return Verdict(False, f"its source topic {source_topic!r} is not a topic of this app "
                              f"(catalog topics{f' prefixed {prefix!r}' if prefix else ''} only)")
    if not has_value:
        return Verdict(False, "it holds no original value to re-send")
    if force:
        return Verdict(True)
    if replayed_at is not None:
        return Verdict(False, f"it was already re-sent at {replayed_at}; --force sends it again", True)
    if name == TRADES and not (agent in REFUSING_AGENTS and reason in NOT_FOLDED_REASONS):
        return Verdict(False, f"a {TRADES} letter of agent {agent!r} with reason {reason!r} may already be "
                              "in the candles, and a re-sent copy would count twice; --force sends it anyway",
                       True)
    return Verdict(True)
