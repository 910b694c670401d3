"""Declaring a symbol-keyed JSON table (the shape of every ticktide table)."""

from __future__ import annotations

from typing import Any, cast

from faust.types import TableT

from streams.faust.context import WorkerApp


def symbol_table(app: WorkerApp, name: str, help_text: str) -> TableT[str, Any]:
    """A table keyed by symbol with JSON values, co-partitioned with the catalog topics
    (declared once; a second call returns the same table)."""
    # not `app.tables.get(name) or ...`: an empty table is falsy
    table = app.tables[name] if name in app.tables else app.Table(
        name, key_type=str, value_type=None, partitions=app.settings.partitions, help=help_text)
    return cast("TableT[str, Any]", table)
