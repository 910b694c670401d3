"""The trade batcher's pure parts: runs stay consecutive and within both limits, and a
TradeBatch carries every record of its run untouched."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from schemas.records import TradeBatch
from streams.hotpath.batcher import split_runs, trade_batch
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry


def _record(offset: int, value_size: int = 100, key: bytes | None = b"BTCUSDT") -> ConsumerRecord:
    return ConsumerRecord(topic="market.trades", partition=2, offset=offset, timestamp=1_721_347_200_000 + offset,
                          timestamp_type=0, key=key, value=bytes([offset % 256]) * value_size, checksum=None,
                          serialized_key_size=len(key or b""), serialized_value_size=value_size, headers=())


def test_runs_cover_every_record_once_in_order_within_the_count_limit() -> None:
    records = [_record(o) for o in range(1000, 1105)]
    runs = split_runs(records, max_records=20)
    assert [len(r) for r in runs] == [20, 20, 20, 20, 20, 5]
    assert [r.offset for run in runs for r in run] == list(range(1000, 1105))


def test_runs_stay_under_the_byte_limit_but_never_drop_an_oversized_record() -> None:
    records = [_record(0, 400), _record(1, 400), _record(2, 5000), _record(3, 10)]
    runs = split_runs(records, max_records=100, max_bytes=1000)
    assert [[r.offset for r in run] for run in runs] == [[0, 1], [2], [3]]


def test_a_batch_round_trips_with_its_records_untouched() -> None:
    records = [_record(7), _record(8, key=None)]
    fetched_at = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    batch = trade_batch(2, records, fetched_at, follows_offset=6)
    codec = AvroCodec(EmbeddedRegistry())
    decoded = codec.decode_as(codec.encode(batch), TradeBatch)
    assert decoded == batch
    assert (decoded.source_topic, decoded.source_partition) == ("market.trades", 2)
    assert decoded.follows_offset == 6 and decoded.offsets == [7, 8] and decoded.keys == [b"BTCUSDT", None]
    assert decoded.values == [r.value for r in records]
    assert decoded.timestamps_ms == [r.timestamp for r in records]
    assert decoded.envelope.event_id == "market.trades/2/7-8"  # a re-sent run has the same id
