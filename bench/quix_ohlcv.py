"""Quix Streams contender: a 1-minute event-time OHLCV per symbol over ticktide's Trades.

    python -m bench.quix_ohlcv --broker HOST:PORT --trades N [--topic T] [--timeout S]

An Application in a fresh consumer group (from the earliest offset) with a short session
timeout (the embedded broker's group join takes about session_timeout/2), a value
deserializer built on ticktide's AvroCodec, the Trade's own time as the record timestamp,
``tumbling_window(60 s, grace 5 s).agg(open/high/low/close/volume/trades).final()``, and
RocksDB state in a temporary directory. The clock starts at the first message
deserialized (the group join is excluded) and stops when the N-th message has been fully
processed. Prints one JSON line: events, seconds, events_per_s, peak_rss_mb, candles
emitted, late trades, and whether the RocksDB state store holds files.
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

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Earliest, Latest, Max, Min, Sum
from quixstreams.models import Deserializer

from bench.raw_consumer import TOPIC, peak_rss_mb
from schemas.records import Trade
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry

WINDOW_MS = 60_000
GRACE_MS = 5_000
SESSION_TIMEOUT_MS = 6_000


class TradeDeserializer(Deserializer):
    """Confluent-framed Avro Trade -> {symbol, price, size, trade_time (ms)}."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.codec = AvroCodec(EmbeddedRegistry())
        self.first_at: float | None = None

    def __call__(self, value: bytes, ctx: Any) -> dict[str, Any]:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        trade = self.codec.decode_as(value, Trade)
        return {"symbol": trade.symbol, "price": float(trade.price), "size": float(trade.size),
                "trade_time": int(trade.trade_time.timestamp() * 1000)}


def trade_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """Event time: the trade's own time, not the Kafka record's."""
    return int(value["trade_time"])


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


def run(broker: str, topic: str, trades: int, timeout: float, state_dir: Path) -> dict[str, Any]:
    """Run the OHLCV app until ``trades`` messages are processed (or ``timeout``)."""
    progress = Progress(trades)
    app = Application(
        broker_address=broker, consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING",
        consumer_extra_config={"session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 1000},
        on_message_processed=progress.on_processed,
    )
    progress.stop = app.stop
    deserializer = TradeDeserializer()
    source = app.topic(topic, key_deserializer="str", value_deserializer=deserializer,
                       timestamp_extractor=trade_time)
    sdf = app.dataframe(source)
    sdf = sdf.tumbling_window(WINDOW_MS, grace_ms=GRACE_MS, on_late=progress.on_late).agg(
        open=Earliest("price"), high=Max("price"), low=Min("price"), close=Latest("price"),
        volume=Sum("size"), trades=Count(),
    ).final()
    sdf.update(progress.on_candle)

    watchdog = threading.Timer(timeout, app.stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        app.run()
    finally:
        watchdog.cancel()
    if progress.done_at is None or deserializer.first_at is None:
        raise SystemExit(f"only {progress.processed} of {trades} messages within {timeout:.0f} s")
    seconds = progress.done_at - deserializer.first_at
    state_files = [p for p in state_dir.rglob("*") if p.is_file()]
    return {"events": progress.processed, "seconds": seconds, "events_per_s": trades / seconds,
            "peak_rss_mb": peak_rss_mb(), "candles": progress.candles, "late": progress.late,
            "state_files": len(state_files),
            "state_ok": progress.candles > 0 and any(p.name == "CURRENT" for p in state_files)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quix_ohlcv", description=__doc__)
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
