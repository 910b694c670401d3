"""The topic catalog: every topic ticktide owns, what it carries and how it is kept.

Keys are UTF-8 strings (the field named by ``key_field``), so all events of one symbol
(or account, or worker) land in one partition, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import records as r
from streams.errors import UnknownTopic, WrongRecordType

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, value types, key, partitions, retention, cleanup policy."""

    name: str
    value_types: tuple[type[r.Event], ...]
    key_field: str
    doc: str
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    partitions: int | None = None  # None: the configured default (Settings.partitions)
    holds_records: bool = False  # its events carry another record's bytes (dead letters)

    def check(self, event: r.Event) -> None:
        """Raise WrongRecordType unless this topic carries events of this type."""
        if not isinstance(event, self.value_types):
            allowed = ", ".join(t.__name__ for t in self.value_types)
            raise WrongRecordType(
                f"{self.name} carries {allowed}, not {type(event).__name__}"
            )

    def key_of(self, event: r.Event) -> str:
        """The partitioning key of an event on this topic."""
        value = getattr(event, self.key_field, None)
        return str(value) if value is not None else event.envelope.event_id

    def config(self, max_record_bytes: int | None = None) -> dict[str, str]:
        """Topic-level configs for topic creation (room for a whole record plus context on
        a topic that holds records, given the largest record)."""
        config = {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}
        if self.holds_records and max_record_bytes is not None:
            config["max.message.bytes"] = str(letter_bytes(max_record_bytes))
        return config


def letter_bytes(max_record_bytes: int) -> int:
    """The largest record on a topic that holds other records (a dead letter: the original
    key and value, where it came from and why)."""
    return max_record_bytes * 2 + 65536


CATALOG: tuple[TopicSpec, ...] = (
    TopicSpec("market.trades", (r.Trade,), "symbol", "Executed trades from venues."),
    TopicSpec("market.book", (r.BookTop,), "symbol", "Best bid/ask updates."),
    TopicSpec("market.news", (r.News,), "source", "News headlines (untrusted text)."),
    TopicSpec("market.candles", (r.Candle,), "symbol", "Final candles, one per closed window."),
    TopicSpec("market.late", (r.Trade,), "symbol", "Trades that arrived after the grace period."),
    TopicSpec("analysis.indicators", (r.IndicatorSnapshot,), "symbol", "Indicators per candle."),
    TopicSpec("analysis.anomalies", (r.Anomaly,), "symbol", "Anomaly rule firings."),
    TopicSpec("analysis.enrichments", (r.Enrichment,), "symbol", "Claude/fallback assessments."),
    TopicSpec("trading.signals", (r.TradeSignal,), "symbol", "Strategy signals."),
    TopicSpec("trading.commands", (r.PlaceOrder, r.Mark, r.ExpireOrders, *r.COMMAND_TYPES, r.StrategyProgressed),
              "account", "Everything the ledger decides on, in one order per account: orders to place, "
              "market marks, expiry requests, user commands, the strategy's progress per symbol."),
    TopicSpec(
        "trading.events",
        (r.OrderPlaced, r.OrderFilled, r.OrderDenied, r.OrderExpired, r.OrderCanceled, r.PositionChanged,
         r.CommandAcknowledged),
        "account",
        "The event-sourced trading ledger: the only source of truth.",
        retention_ms=-1,
    ),
    TopicSpec("system.heartbeats", (r.Heartbeat,), "worker_id", "Liveness of every worker.",
              retention_ms=DAY_MS, partitions=1),  # 1: one health table holds the whole system
    TopicSpec("system.status", (r.ComponentStatus,), "component", "Component health changes.",
              partitions=1),
    TopicSpec("system.deadletter", (r.DeadLetter,), "source_topic",
              "Records that could not be decoded or processed, with their original bytes.",
              retention_ms=30 * DAY_MS, holds_records=True),
    TopicSpec("system.deadletter_replays", (r.DeadLetter,), "source_topic",
              "Dead letters `ticktide dlq replay` re-sent, keyed by their PARTITION:OFFSET on "
              "system.deadletter (envelope: when; causation_id: the letter's event id).",
              retention_ms=30 * DAY_MS, holds_records=True),
    TopicSpec("system.retry", (r.DeadLetter,), "source_topic",
              "Records that failed transiently, waiting for another try (attempt, due time).",
              holds_records=True),
    TopicSpec("user.commands", r.COMMAND_TYPES, "user",
              "Commands from users, one record type each (PauseStrategy, SetRiskLimit, ...)."),
    TopicSpec("analysis.enrichment_cache", (r.Enrichment,), "subject_event_id",
              "Claude's answers keyed by cache key (sent with that key): replays re-use them.",
              retention_ms=-1, cleanup_policy="compact"),
)

_BY_NAME = {spec.name: spec for spec in CATALOG}


def topic(name: str) -> TopicSpec:
    """The catalog entry of a topic; UnknownTopic lists the valid names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownTopic(
            f"unknown topic {name!r}; the catalog has: {', '.join(_BY_NAME)}"
        ) from None

