"""The raw ceiling: aiokafka ``getmany`` + ticktide's AvroCodec, no group, no framework.

    python -m bench.raw_consumer --broker HOST:PORT --trades N [--topic T] [--timeout S] [--no-decode]

Assigns every partition of the topic by hand, seeks to the beginning, fetches with
``getmany`` and decodes every record until N are decoded. The clock starts when the first
batch arrives (connection and metadata excluded, as for the other contenders). Prints one
JSON line: events, seconds, events_per_s, peak_rss_mb (this process's VmHWM).
``--no-decode`` skips the decoding: the fetch-only ceiling, to see what the codec costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry

TOPIC = "market.trades"


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size (VmHWM) of a process in MB; None if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


async def consume(broker: str, topic: str, trades: int, timeout: float,
                  decode: bool = True) -> dict[str, Any]:
    """Fetch (and decode) ``trades`` records from the start of every partition."""
    codec = AvroCodec(EmbeddedRegistry())
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise SystemExit(f"topic {topic} has no partitions on {broker}")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        decoded, started = 0, 0.0
        deadline = time.monotonic() + timeout
        while decoded < trades:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {decoded} of {trades} records within {timeout:.0f} s")
            batches = await consumer.getmany(timeout_ms=500)
            if batches and not started:
                started = time.perf_counter()
            for records in batches.values():
                if decode:
                    for record in records:
                        codec.decode(record.value)
                decoded += len(records)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {"events": decoded, "seconds": seconds, "events_per_s": decoded / seconds,
            "partitions": len(assigned), "peak_rss_mb": peak_rss_mb()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_consumer", description=__doc__)
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
