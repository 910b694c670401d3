"""Which dead letters may be re-sent where, and when a re-send needs --force (domain/rules/deadletters.py)."""

from __future__ import annotations

from typing import Any

from domain.rules.deadletters import catalog_name, judge
from streams.kafka.catalog import CATALOG

NAMES = [spec.name for spec in CATALOG]


def _judge(source: str, *, prefix: str = "", agent: str = "market.trades", reason: str = "undecodable",
           replayed_at: str | None = None, force: bool = False, has_value: bool = True) -> Any:
    return judge(source_topic=source, agent=agent, reason=reason, has_value=has_value, prefix=prefix,
                 catalog=NAMES, replayed_at=replayed_at, force=force)


def test_only_this_apps_catalog_topics_are_targets() -> None:
    assert catalog_name("market.trades", "", NAMES) == "market.trades"
    assert catalog_name("r1.market.trades", "r1.", NAMES) == "market.trades"
    assert catalog_name("market.trades", "r1.", NAMES) is None  # another instance's topic
    assert catalog_name("r2.market.trades", "r1.", NAMES) is None
    assert catalog_name("ticktide-market.trades-owners", "", NAMES) is None  # internal
    assert catalog_name("ticktide-portfolio-changelog", "", NAMES) is None
    assert catalog_name("payments.orders", "", NAMES) is None
    assert catalog_name("system.deadletter", "", NAMES) is None
    assert catalog_name("system.deadletter_replays", "", NAMES) is None


def test_a_letter_for_another_topic_is_refused_even_with_force() -> None:
    verdict = _judge("payments.orders", force=True)
    assert not verdict.allowed and not verdict.forceable
    assert "'payments.orders' is not a topic of this app" in verdict.why
    assert not _judge("r1.market.trades", prefix="r2.", force=True).allowed
    assert "prefixed 'r2.'" in _judge("market.trades", prefix="r2.").why


def test_a_second_replay_needs_force() -> None:
    assert _judge("market.trades").allowed
    again = _judge("market.trades", replayed_at="2024-07-19T00:00:00Z")
    assert not again.allowed and again.forceable and "already re-sent at 2024-07-19" in again.why
    assert _judge("market.trades", replayed_at="2024-07-19T00:00:00Z", force=True).allowed


def test_a_trade_that_may_be_in_the_candles_needs_force() -> None:
    for agent, reason in (("market.trades", "processing_failed"), ("trading.marks", "undecodable"),
                          ("market.trades", "retries_exhausted")):
        verdict = _judge("market.trades", agent=agent, reason=reason)
        assert not verdict.allowed and verdict.forceable and "count twice" in verdict.why
        assert _judge("market.trades", agent=agent, reason=reason, force=True).allowed
    assert _judge("market.trades", reason="invalid_value").allowed  # refused before folding
    assert _judge("trading.commands", agent="trading.ledger", reason="processing_failed").allowed


def test_nothing_to_send_is_refused() -> None:
    assert not _judge("market.trades", has_value=False, force=True).allowed
