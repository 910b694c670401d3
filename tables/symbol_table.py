"""Declaring a symbol-keyed JSON table (the shape of every ticktide table)."""

from __future__ import annotations

from typing import Any, cast

from faust.types import TableT

from streams.faust.context import WorkerApp

STORE_OPTIONS = {"write_buffer_size": 8 << 20, "max_write_buffer_number": 2, "block_cache_size": 8 << 20}
"""RocksDB sizes of each table partition's store. Faust's defaults allow each store three 64 MB
write buffers and a 2 GB block cache, and a worker holds one store per partition of each table
(33 with 4 partitions): bounded here to 16 MB of buffers and an 8 MB cache per store."""


def symbol_table(app: WorkerApp, name: str, help_text: str) -> TableT[str, Any]:
    """A table keyed by symbol with JSON values, co-partitioned with the catalog topics
    (declared once; a second call returns the same table)."""
    # not `app.tables.get(name) or ...`: an empty table is falsy
    table = app.tables[name] if name in app.tables else app.Table(
        name, key_type=str, value_type=None, partitions=app.settings.partitions, help=help_text,
        options=dict(STORE_OPTIONS))  # a copy: the store takes keys out of it
    return cast("TableT[str, Any]", table)
