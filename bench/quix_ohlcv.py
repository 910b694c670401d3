"""Quix Streams contender: a 1-minute event-time OHLCV per symbol, with ticktide's decoder.

    python -m bench.quix_ohlcv --broker HOST:PORT --trades N [--topic T] [--timeout S]

An Application in a fresh consumer group (from the earliest offset) with a short session
timeout (the embedded broker's group join takes about session_timeout/2) and RocksDB
state in a temporary directory. Values arrive as bytes and are decoded in the first step
with the worker's hot-path decoder and checks, as the limit contender does:
``TickDecoder(codec).decode_checked(value, kafka timestamp, partition, bounds)`` with
``decoder.partitions`` set to the topic's partition count, bounds from ``bounds_now``
(Quix's deserializers are not told the partition, hence a step; a refused record is
counted and filtered out). The Tick's time becomes the record timestamp, then
``tumbling_window(60 s, grace 5 s).agg(open/high/low/close/volume/trades).final()``.
Prices and sizes go into the state as floats (Quix keeps state as JSON, which holds no
integers past 64 bits). The clock starts at the first record decoded (the group join is
excluded) and stops when the N-th has been fully processed. Prints one JSON line: events,
seconds, events_per_s, peak_rss_mb, candles emitted, late trades, rejected records, and
whether the RocksDB state store holds files.

Needs ``quixstreams`` (the ``bench`` extra); run it with a Python that has it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from quixstreams import Application, message_context
from quixstreams.dataframe.windows import Count, Earliest, Latest, Max, Min, Sum

from bench.contest import TOPIC, peak_rss_mb, worker_decoder
from domain.market.candles import UNITS
from streams.errors import DecodeError, InvalidValue
from streams.settings import Settings, load_settings
from streams.validation import bounds_now

WINDOW_MS = 60_000
GRACE_MS = 5_000
SESSION_TIMEOUT_MS = 6_000


def partition_count(broker: str, topic: str) -> int:
    """Partitions of ``topic`` (librdkafka metadata, as Quix itself uses)."""
    metadata = AdminClient({"bootstrap.servers": broker}).list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
    if not partitions:
        raise SystemExit(f"topic {topic} has no partitions on {broker}")
    return len(partitions)


class TradeStep:
    """The decoding step: wire bytes -> {symbol, price, size, time_ms}, or None if refused."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.decoder = worker_decoder(settings, partitions)
        self.max_future_skew_s = settings.max_future_skew_s
        self.first_at: float | None = None
        self.rejected = 0

    def __call__(self, value: bytes, key: Any, timestamp: int, headers: Any) -> dict[str, Any] | None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        partition = message_context().partition
        try:
            tick = self.decoder.decode_checked(value, timestamp, partition, bounds_now(self.max_future_skew_s))
        except (DecodeError, InvalidValue):
            self.rejected += 1
            return None
        return {"symbol": tick.symbol, "price": tick.price / UNITS, "size": tick.size / UNITS,
                "time_ms": tick.time_us // 1000}


def trade_time(value: dict[str, Any], key: Any, timestamp: int, headers: Any) -> int:
    """Event time: the trade's own time, not the Kafka record's."""
    return int(value["time_ms"])


class Progress:
    """Counts fully processed messages and stops the app at the target."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.stop: Any = lambda: None  # the Application's stop, once it exists
        self.processed = self.candles = self.late = 0
        self.done_at: float | None = None

    def on_processed(self, topic: str, partition: int, offset: int) -> None:
        self.processed += 1
        if self.processed == self.target:
            self.done_at = time.perf_counter()
            self.stop()

    def on_candle(self, candle: Any) -> None:
        self.candles += 1

    def on_late(self, *args: Any, **kwargs: Any) -> bool:
        self.late += 1
        return False  # counted here; do not log each one


def build(app: Application, topic: str, step: TradeStep, progress: Progress) -> None:
    """The dataframe: decode, filter refused records, event time, 1m OHLCV, count candles."""
    source = app.topic(topic, key_deserializer="str", value_deserializer="bytes")
    sdf = app.dataframe(source)
    sdf = sdf.apply(step, metadata=True).filter(lambda trade: trade is not None)
    sdf = sdf.set_timestamp(trade_time)
    sdf = sdf.tumbling_window(WINDOW_MS, grace_ms=GRACE_MS, on_late=progress.on_late).agg(
        open=Earliest("price"), high=Max("price"), low=Min("price"), close=Latest("price"),
        volume=Sum("size"), trades=Count(),
    ).final()
    sdf.update(progress.on_candle)


def run(broker: str, topic: str, trades: int, timeout: float, state_dir: Path) -> dict[str, Any]:
    """Run the OHLCV app until ``trades`` messages are processed (or ``timeout``)."""
    progress = Progress(trades)
    step = TradeStep(load_settings(broker=broker, broker_flavor="tansu"), partition_count(broker, topic))
    app = Application(
        broker_address=broker, consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING",
        consumer_extra_config={"session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 1000},
        on_message_processed=progress.on_processed,
    )
    progress.stop = app.stop
    build(app, topic, step, progress)
    watchdog = threading.Timer(timeout, app.stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        app.run()
    finally:
        watchdog.cancel()
    if progress.done_at is None or step.first_at is None:
        raise SystemExit(f"only {progress.processed} of {trades} messages within {timeout:.0f} s")
    seconds = progress.done_at - step.first_at
    state_files = [p for p in state_dir.rglob("*") if p.is_file()]
    return {"events": progress.processed, "seconds": seconds, "events_per_s": trades / seconds,
            "peak_rss_mb": peak_rss_mb(), "candles": progress.candles, "late": progress.late,
            "rejected": step.rejected, "state_files": len(state_files),
            "state_ok": progress.candles > 0 and any(p.name == "CURRENT" for p in state_files)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quix_ohlcv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--trades", type=int, required=True)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after S seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
        result = run(args.broker, args.topic, args.trades, args.timeout, Path(state_dir))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
