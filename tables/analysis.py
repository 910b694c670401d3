"""Indicator and anomaly tables, keyed by symbol (co-partitioned with market.candles).

* ``indicators``: symbol -> {interval: {"state": IndicatorState, "applied": [partition,
  offset] of the last market.candles record folded, "latest": snapshot JSON}}
* ``anomalies``: symbol -> the last N anomalies, oldest first
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faust.types import TableT

from domain.analysis import Output, SeriesState
from domain.fold import Position
from domain.indicators import IndicatorState
from schemas.records import Anomaly, IndicatorSnapshot
from streams.faust.context import WorkerApp
from streams.kafka.json_form import event_to_json
from tables import names
from tables.symbol_table import symbol_table

KEEP_ANOMALIES = 200


def declare(app: WorkerApp) -> tuple[TableT[str, Any], TableT[str, Any]]:
    """The indicator and anomaly tables."""
    return (symbol_table(app, names.INDICATORS, "Indicator state and latest snapshot per symbol."),
            symbol_table(app, names.ANOMALIES, "Recent anomalies per symbol."))


def load(table: TableT[str, Any], symbol: str, interval: str) -> SeriesState:
    """The fold state of one series (empty before its first candle)."""
    entry = (table.get(symbol) or {}).get(interval)
    if not entry:
        return SeriesState()
    return SeriesState(IndicatorState(**entry["state"]), Position(*entry.get("applied", (-1, -1))))


def store(indicators: TableT[str, Any], anomalies: TableT[str, Any], symbol: str, interval: str,
          state: SeriesState, outputs: Sequence[Output]) -> None:
    """Write a series' state (and its latest snapshot, if the step made one), and append
    the step's anomalies to the symbol's recent ones."""
    if state.indicators is None:
        return
    row = dict(indicators.get(symbol) or {})
    snapshots = [event_to_json(o) for o in outputs if isinstance(o, IndicatorSnapshot)]
    latest = snapshots[-1] if snapshots else (row.get(interval) or {}).get("latest")
    row[interval] = {"state": state.indicators.to_row(),
                     "applied": [state.applied.partition, state.applied.offset], "latest": latest}
    indicators[symbol] = row
    found = [o for o in outputs if isinstance(o, Anomaly)]
    if found:
        recent = list(anomalies.get(symbol) or [])
        known = {a["envelope"]["event_id"] for a in recent}
        recent += [event_to_json(a) for a in found if a.envelope.event_id not in known]
        anomalies[symbol] = recent[-KEEP_ANOMALIES:]
