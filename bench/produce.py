"""Producer throughput: `python -m bench.produce [--rows N]`.

Writes N Binance-format trade rows to a CSV, then times `ticktide produce` (parse,
validate, encode, send, flush) into a fresh embedded broker, and the Python API alone
(EventProducer.send on ready-made records) for comparison.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.devstack.broker import EmbeddedBroker
from streams.ingest import ParsedRow, read_trades
from streams.kafka.admin import create_topics, describe
from streams.kafka.producer import EventProducer
from streams.settings import load_settings


def write_csv(path: Path, rows: int, seed: int = 1) -> None:
    """Binance `trades` CSV rows (no header), a random walk around 64,000."""
    rng = random.Random(seed)
    price = 64_000.0
    start_ms = 1_721_347_200_000
    with path.open("w") as out:
        for i in range(rows):
            price = max(1.0, price + rng.gauss(0, 2))
            qty = round(rng.expovariate(200) + 0.001, 3)
            out.write(f"{i + 1},{price:.1f},{qty},{price * qty:.4f},{start_ms + i},"
                      f"{'true' if rng.random() < 0.5 else 'false'}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        csv = Path(tmp) / "trades.csv"
        write_csv(csv, args.rows)
        settings = load_settings(broker=broker.bootstrap, broker_flavor="tansu")
        create_topics(settings)

        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "streams.cli", "produce", "market.trades", "--file", str(csv),
             "--format", "binance-trades", "--symbol", "BTCUSDT", "--broker", broker.bootstrap],
            capture_output=True, text=True, check=True)
        cli_seconds = time.perf_counter() - started
        landed = describe(settings, "market.trades").records

        trades = [row.event for row in read_trades(csv, "binance-trades", symbol="BTCUSDT")
                  if isinstance(row, ParsedRow)]
        started = time.perf_counter()
        with EventProducer(settings) as producer:
            for trade in trades:
                producer.send("market.trades", trade)
        api_seconds = time.perf_counter() - started

    print(f"rows: {args.rows:,}; landed after the CLI run: {landed:,}")
    print(f"ticktide produce (CLI, whole command incl. start-up): {args.rows / cli_seconds:>9,.0f} rows/s")
    print(f"  its own report: {result.stderr.strip().splitlines()[-1]}")
    print(f"EventProducer.send (encode + send, records ready):     {len(trades) / api_seconds:>9,.0f} rows/s")


if __name__ == "__main__":
    main()
