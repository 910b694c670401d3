"""Every table name and key scheme, once.

Table declarations (tables/), agents, web views (streams/web/), offline tools
(streams/tools/) and the dashboard name tables only through this module. Keys:

* symbol tables (``CANDLES``, ``INDICATORS``, ``ANOMALIES``,
  ``STRATEGY``, ``SIGNALS``): the symbol, like the market topics' record keys; and in
  ``CANDLES`` and ``INDICATORS`` the progress row of each source partition,
  ``progress_key(p)`` (``#partition/<p>``: a symbol never starts with ``#``, so data cannot
  reach it);
* ``CANDLE_HISTORY``: ``history_key(symbol, interval, slot)``, a ring of blocks of the last
  N final candles of each symbol and interval (``|`` is in no symbol or interval);
* ``PORTFOLIO``: the account (trading.commands' record key);
* ``ENRICHMENTS``: ``partition_key(p)``, the latest enrichments of input partition p (its
  inputs are keyed by symbol or by a headline's source: the partition is what they share);
* ``HEALTH``: one row per component instance, ``health_key(worker_id, component)``
  (``<worker_id>/<component>``), and ``SYSTEM_KEY`` to route /health/system.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CANDLES = "candles"
CANDLE_HISTORY = "candle_history"
INDICATORS = "indicators"
ANOMALIES = "anomalies"
ENRICHMENTS = "enrichments"
PORTFOLIO = "portfolio"
STRATEGY = "strategy"
SIGNALS = "signals"
HEALTH = "health"
ALL = (CANDLES, CANDLE_HISTORY, INDICATORS, ANOMALIES, ENRICHMENTS, PORTFOLIO, STRATEGY, SIGNALS, HEALTH)
"""Every table a worker declares."""

PROGRESS_PREFIX = "#partition/"
"""Key prefix of the progress rows (candles and indicators tables)."""
SYSTEM_KEY = "system"
"""The key /health/system is routed by (the health table has one partition)."""


def partition_key(partition: int) -> str:
    """The key of a row about a whole source partition (``#partition/<p>``)."""
    return f"{PROGRESS_PREFIX}{partition}"


def progress_key(partition: int) -> str:
    """The key of a source partition's progress row (candles and indicators tables)."""
    return partition_key(partition)


def progress_row(applied_through: int) -> dict[str, int]:
    """A progress row: the source partition is folded through this offset."""
    return {"applied_through": applied_through}


def applied_through(row: Any) -> int:
    """The offset a progress row says its partition is folded through; -1 (fold the
    partition from its start) for anything else: whoever can write the changelog can put
    anything under the key, and it must not stop the partition's fold or reach the consumer
    as an offset below -1."""
    try:
        return max(-1, int(row["applied_through"]))
    except (TypeError, KeyError, ValueError, OverflowError):
        return -1


def is_progress_key(key: str) -> bool:
    """Whether a candles-table key is a progress row (not a symbol)."""
    return key.startswith(PROGRESS_PREFIX)


def symbol_rows(rows: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The symbols' rows of the candles table (not the progress rows)."""
    return [(key, row) for key, row in rows if not is_progress_key(key)]


def history_key(symbol: str, interval: str, slot: int) -> str:
    """The candle-history key of one slot of a symbol's ring of blocks of final candles of
    ``interval`` (``b``: blocks; versions before them kept one candle a slot, ``|<slot>``)."""
    return f"{symbol}|{interval}|b{slot}"


def health_key(worker_id: str, component: str) -> str:
    """The health-table key of one component instance."""
    return f"{worker_id}/{component}"


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust keeps a table in."""
    return f"{app_id}-{table}-changelog"
