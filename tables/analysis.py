"""Indicator and anomaly tables, keyed by symbol (co-partitioned with market.candles).

* ``indicators``: symbol -> {interval: {"state": IndicatorState, "latest": snapshot JSON}}
* ``anomalies``: symbol -> the last N anomalies, oldest first
"""

from __future__ import annotations

import dataclasses
from typing import Any

from faust.types import TableT

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


def load_state(table: TableT[str, Any], symbol: str, interval: str) -> IndicatorState | None:
    """The indicator state of one series, or None before its first candle."""
    entry = (table.get(symbol) or {}).get(interval)
    return IndicatorState(**entry["state"]) if entry else None


def store(indicators: TableT[str, Any], anomalies: TableT[str, Any], state: IndicatorState,
          snapshot: IndicatorSnapshot, found: list[Anomaly]) -> None:
    """Write a series' new state and latest snapshot, and append its anomalies."""
    row = dict(indicators.get(state.symbol) or {})
    row[state.interval] = {"state": dataclasses.asdict(state), "latest": event_to_json(snapshot)}
    indicators[state.symbol] = row
    if found:
        recent = list(anomalies.get(state.symbol) or [])
        known = {a["envelope"]["event_id"] for a in recent}
        recent += [event_to_json(a) for a in found if a.envelope.event_id not in known]
        anomalies[state.symbol] = recent[-KEEP_ANOMALIES:]
