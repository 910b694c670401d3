"""RowWriter's own JSON encoding writes the bytes Faust's table serializers write, so a row
written by the candle fold reads back (and recovers from the changelog) as Faust's own."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import faust

from streams.faust.patches.private_api import partition_scope
from streams.faust.table_rows import RowWriter, store_encoders
from streams.settings import load_settings
from tables import names

ROWS: list[tuple[str, Any]] = [
    ("BTCUSDT", {"symbol": "BTCUSDT", "watermark_us": -(2**62), "panes": {"1000000": ["1,2,-3", "4,5,6"]}}),
    ("ÉTH|1s|17", "1721347200000000,1721347201000000,3,-(2**400)"),
    ("Ω-PERP", {"nested": [1, 2.5, None, True, {"k": "Ω \"quoted\" \\ \n"}]}),
    ("#partition/3", {"applied_through": 12345}),
]


def test_rows_encode_to_faust_s_own_bytes_and_unknown_types_fall_back() -> None:
    app = faust.App("rows-test", broker="kafka://127.0.0.1:1", store="memory://")
    store: Any = app.Table("t", key_type=str, value_type=None).data
    encode_key, encode_value = store_encoders(store, *ROWS[0])
    assert encode_key is not store._encode_key and encode_value is not store._encode_value  # the fast path
    for key, value in [*ROWS, ("with-decimal", {"price": Decimal("1.5")})]:
        assert encode_key(key) == store._encode_key(key)
        assert encode_value(value) == store._encode_value(value)


def test_a_table_that_is_not_json_keeps_its_own_encoders() -> None:
    app = faust.App("rows-test-raw", broker="kafka://127.0.0.1:1", store="memory://")
    store: Any = app.Table("raw", key_type=bytes, value_type=bytes).data  # raw bytes, not JSON
    encode_key, encode_value = store_encoders(store, b"k", b"v")
    assert (encode_key, encode_value) == (store._encode_key, store._encode_value)


def test_a_row_reads_back_from_its_partition_and_one_that_is_not_json_reads_as_none(tmp_path: Path) -> None:
    """The checkpoint reads history rows this way: whoever can write to the changelog can put
    bytes that are not JSON in the store; read as a missing row, the next write replaces them
    (raised, every checkpoint of the partition failed after)."""
    app = faust.App("rows-read", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("history", key_type=str, value_type=None, partitions=2)
    store: Any = table.data
    writer = RowWriter(load_settings(broker="127.0.0.1:1"), "market.trades")
    with partition_scope("market.trades", 1):
        store._set(store._encode_key("BTCUSDT|1s|3"), store._encode_value("1,2;3,4"))
        store._set(store._encode_key("ETHUSDT|1s|3"), b"\xff not json")
    assert writer.read(table, 1, "BTCUSDT|1s|3") == "1,2;3,4"
    assert writer.read(table, 0, "BTCUSDT|1s|3") is None  # another partition's store
    assert writer.read(table, 1, "ETHUSDT|1s|3") is None


def test_a_progress_row_reads_back_and_a_forged_one_means_fold_the_partition_from_its_start() -> None:
    assert names.applied_through(names.progress_row(12345)) == 12345
    assert names.applied_through(names.progress_row(-1)) == -1
    # whoever can write the changelog can put anything under a progress key: none of it may stop
    # the partition's fold (it was a ValueError on every run of the candle fold) or become an offset below -1
    for forged in ({"applied_through": -7}, {"applied_through": "x"}, {"applied_through": None},
                   {"applied_through": float("inf")}, {"other": 5}, [1, 2], "text", 42, None):
        assert names.applied_through(forged) == -1, forged
