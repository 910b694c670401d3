"""The limit contender: a plain Python loop over market.trades, no framework.

    python -m bench.plain_loop --broker HOST:PORT --trades N [--topic T] [--timeout S] [--no-decode]

What it does, and nothing more:

1. assigns every partition of the topic by hand (no consumer group, no commits), seeks to
   the beginning and fetches with aiokafka ``getmany``;
2. decodes each record with ticktide's hot-path decoder, with the worker's checks:
   ``TickDecoder(codec).decode_checked(value, record.timestamp, partition, bounds)``, the
   codec built from the settings as the worker builds it, ``decoder.partitions`` set to the
   topic's partition count (so the symbol-partition check runs) and ``bounds`` from
   ``streams.validation.bounds_now`` once per ``getmany`` batch. A record the decoder
   refuses is counted as rejected and not folded;
3. folds each Tick into one dict: (symbol, interval, window start) -> [open, high, low,
   close, volume] for tumbling 1s, 1m and 5m windows, amounts in the Tick's integer units
   (1e-18); open is the first trade to arrive in the window and close the last. Windows are
   never closed, emitted, checkpointed or written anywhere.

The clock starts when the ``getmany`` call that returns the first records is made
(connection, metadata and assignment excluded, as the other contenders' group joins are;
the first fetch included, so the fetch-only line measures fetching) and stops once N
records are handled. Prints one JSON line: events,
seconds, events_per_s, partitions, rejected, windows (entries in the dict), peak_rss_mb
(this process's VmHWM). ``--no-decode`` skips steps 2 and 3: the fetch-only line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.contest import TOPIC, peak_rss_mb, worker_decoder
from domain.market.bars import Tick
from streams.errors import DecodeError, InvalidValue
from streams.settings import Settings, load_settings
from streams.validation import bounds_now

INTERVALS_US = (1_000_000, 60_000_000, 300_000_000)
"""Tumbling 1s, 1m and 5m windows."""

Bars = dict[tuple[str, int, int], list[int]]
"""(symbol, interval us, window start us) -> [open, high, low, close, volume]."""


def fold(bars: Bars, tick: Tick) -> None:
    """Add one trade to its 1s, 1m and 5m windows."""
    price, time_us = tick.price, tick.time_us
    for interval in INTERVALS_US:
        key = (tick.symbol, interval, time_us - time_us % interval)
        bar = bars.get(key)
        if bar is None:
            bars[key] = [price, price, price, price, tick.size]
            continue
        if price > bar[1]:
            bar[1] = price
        if price < bar[2]:
            bar[2] = price
        bar[3] = price
        bar[4] += tick.size


class Loop:
    """Decodes and folds fetched records; counts what the decoder refuses."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.decoder = worker_decoder(settings, partitions)
        self.max_future_skew_s = settings.max_future_skew_s
        self.bars: Bars = {}
        self.rejected = 0

    def handle(self, partition: int, records: Sequence[Any]) -> None:
        """Decode and fold one partition's fetched records."""
        decode, bars = self.decoder.decode_checked, self.bars
        bounds = bounds_now(self.max_future_skew_s)
        for record in records:
            try:
                tick = decode(record.value, record.timestamp, partition, bounds)
            except (DecodeError, InvalidValue):
                self.rejected += 1
                continue
            fold(bars, tick)


async def assign_all(consumer: AIOKafkaConsumer, topic: str) -> int:
    """Assign every partition of ``topic`` from its beginning; the partition count."""
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        raise SystemExit(f"topic {topic} has no partitions")
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    await consumer.seek_to_beginning(*assigned)
    return len(assigned)


async def consume(broker: str, topic: str, trades: int, timeout: float,
                  decode: bool = True) -> dict[str, Any]:
    """Fetch ``trades`` records from the start of every partition (decoding and folding them)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await assign_all(consumer, topic)
        loop = Loop(load_settings(broker=broker, broker_flavor="tansu"), partitions)
        handled, started = 0, None
        deadline = time.monotonic() + timeout
        while handled < trades:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {handled} of {trades} records within {timeout:.0f} s")
            asked = time.perf_counter()
            batches = await consumer.getmany(timeout_ms=500)
            if batches and started is None:
                started = asked
            for tp, records in batches.items():
                if decode:
                    loop.handle(tp.partition, records)
                handled += len(records)
        seconds = time.perf_counter() - (started or 0.0)
    finally:
        await consumer.stop()
    return {"events": handled, "seconds": seconds, "events_per_s": handled / seconds,
            "partitions": partitions, "rejected": loop.rejected, "windows": len(loop.bars),
            "peak_rss_mb": peak_rss_mb()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--trades", type=int, required=True)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after S seconds")
    parser.add_argument("--no-decode", dest="decode", action="store_false", help="fetch only")
    args = parser.parse_args(argv)
    result = asyncio.run(consume(args.broker, args.topic, args.trades, args.timeout, args.decode))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
