"""What Faust knows about this worker (assignment, positions, recovery), as the plain facts
``streams.ops.worker_status.RuntimeFacts`` asks for."""

from __future__ import annotations

from typing import Any

from faust.types import AppT, TopicT

from streams.faust.patches.private_api import read_offset, recovery
from streams.hotpath.reader import TradeReader

CANDLE_FOLD = "market.trades"
"""The candle fold's name in health and metrics (fed by the trade reader, not a Faust agent)."""


class FaustRuntime:
    """``RuntimeFacts`` over a Faust app and the trade reader that feeds its candle fold."""

    def __init__(self, app: AppT) -> None:
        self.app = app
        self.trade_reader: TradeReader | None = None  # set by the composition root

    def input_topics(self, agent: str) -> set[str]:
        """The topics an agent consumes."""
        if agent == CANDLE_FOLD and self.trade_reader is not None:
            return {self.trade_reader.topic}
        found = self.app.agents.get(agent)
        channel = found.channel if found is not None else None
        return set(channel.topics) if isinstance(channel, TopicT) else set()

    def assigned(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this worker's agents own, sorted."""
        read = self.trade_reader.assigned() if self.trade_reader is not None else []
        return sorted([*((tp.topic, tp.partition) for tp in self.app.assignor.assigned_actives()), *read])

    def lag(self, topics: set[str] | None = None) -> dict[str, int]:
        """Records behind the fetched end, per assigned partition ("topic[p]")."""
        consumer = self.app.consumer
        fed = self.trade_reader.lag() if self.trade_reader is not None else {}
        lags = {where: n for where, n in fed.items() if topics is None or where.rpartition("[")[0] in topics}
        for tp in sorted(self.app.assignor.assigned_actives()):
            if topics is not None and tp.topic not in topics:
                continue
            try:
                end = consumer.highwater(tp)
            except Exception:  # not fetched yet
                continue
            read = read_offset(self.app, tp)
            if end is not None and end >= 0:
                lags[f"{tp.topic}[{tp.partition}]"] = max(0, end - (read + 1 if read is not None else 0))
        return lags

    def recovered(self) -> bool:
        """Table recovery has finished for the current assignment."""
        return bool(recovery(self.app).completed.is_set()) and not self.app.in_recovery

    def rebalancing(self) -> bool:
        """The consumer group is rebalancing."""
        return self.app.rebalancing

    def recovering(self) -> bool:
        """Tables are being recovered from their changelogs."""
        return self.app.in_recovery

    def recovery_remaining(self) -> dict[str, int]:
        """Changelog records still to read, for "active" and "standby" tables."""
        service = recovery(self.app)
        return {"active": _safe(service.active_remaining_total),
                "standby": _safe(service.standby_remaining_total)}

    def table_sizes(self) -> dict[str, int]:
        """Keys in this worker's part of each table."""
        return {name: _size(table) for name, table in self.app.tables.items()}


def _size(table: Any) -> int:
    try:
        return len(table)
    except Exception:  # a store that cannot count while recovering
        return 0


def _safe(figure: Any) -> int:
    try:
        return int(figure())
    except Exception:  # no assignment yet
        return 0
