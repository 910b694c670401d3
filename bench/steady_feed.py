"""A paced producer: synthetic trades at a steady rate, each sent at its own trade time.

    python -m bench.steady_feed --broker HOST:PORT [--rate R] [--seconds S] [--symbols K]

Draws S x R trades from ``streams.ingest.synthetic_trades`` (fixed seed, mean rate R over
K symbols, the feed's short bursts kept) on a simulated clock that starts a little in the
future, and encodes them all first with ticktide's codec (encoding while sending would
cost more CPU than a 2-core box has to spare at 5k/s). Then it sends each one, with
``EventProducer.send_raw`` (the symbol as key, as ``send`` does), when the wall clock
reaches its arrival time on the feed's clock: a trade's time is the moment it is sent
(but for the feed's ~1% of trades reported late, whose times are up to 3 s earlier). ``linger.ms`` is lowered
to FEED_LINGER_MS so the producer's own batching adds little to the worker's measured
latency (which starts at the record's timestamp, set when it is sent). It stops after S
seconds of wall time even if it is behind.

Prints one JSON line when it starts sending ({"sending": true, "prepared_s": ...}) and one
when done: produced, seconds, per_s (achieved), behind_s (how late the last trade went
out against its schedule), max_behind_s and symbols (those with at least one trade).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from bench.contest import TOPIC, symbol_names
from schemas.records import Trade
from streams.ingest import synthetic_trades
from streams.kafka.catalog import topic as catalog_topic
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.kafka.registry import registry_for
from streams.settings import Settings, load_settings

SEED = 11
FEED_LINGER_MS = 5
ENCODE_PROBE = 2_000  # trades encoded first to estimate how long preparing all takes
PREPARE_MARGIN = 1.5  # the feed starts this many times the estimate later, plus 2 s
ONE_SECOND = timedelta(seconds=1)

Prepared = list[tuple[float, bytes, bytes]]
"""(seconds after the start, key, value) per trade, in sending order."""


@dataclass
class Pace:
    """How the feed kept to its schedule."""

    produced: int = 0
    behind_s: float = 0.0
    max_behind_s: float = 0.0

    def sent(self, behind_s: float) -> None:
        self.produced += 1
        self.behind_s = behind_s
        self.max_behind_s = max(self.max_behind_s, behind_s)


def encode(codec: AvroCodec, trades: Sequence[Trade], start: datetime) -> Prepared:
    """The trades as (due second: their arrival on the feed's clock, key, value)."""
    key_of = catalog_topic(TOPIC).key_of
    return [((t.envelope.ingest_time - start) / ONE_SECOND, key_of(t).encode(), codec.encode(t)) for t in trades]


def prepare(settings: Settings, rate: float, seconds: float, symbols: list[str]) -> tuple[datetime, Prepared]:
    """Every trade of the run, encoded, on a clock that starts once they are ready."""
    codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
    count = int(rate * seconds * 1.05)  # the feed's clock is random: enough to fill ``seconds``
    probe = list(islice(synthetic_trades(symbols, seed=SEED, rate=rate), ENCODE_PROBE))
    began = time.monotonic()
    encode(codec, probe, datetime.now(UTC))
    estimate = (time.monotonic() - began) * count / len(probe)
    start = datetime.now(UTC) + timedelta(seconds=2 + PREPARE_MARGIN * estimate)
    trades = synthetic_trades(symbols, seed=SEED, start=start, rate=rate)
    prepared = [p for p in encode(codec, list(islice(trades, count)), start) if p[0] < seconds]
    return start, prepared


def send(producer: EventProducer, prepared: Prepared, start: datetime, seconds: float) -> tuple[Pace, float]:
    """Send each trade at its time, for at most ``seconds`` of wall time; (pace, seconds sending)."""
    began = time.monotonic() + (start - datetime.now(UTC)) / ONE_SECOND
    time.sleep(max(0.0, began - time.monotonic()))
    pace = Pace()
    for due, key, value in prepared:
        now = time.monotonic()
        if now - began >= seconds:
            break
        wait = began + due - now
        if wait > 0.001:
            time.sleep(wait)
        producer.send_raw(TOPIC, key, value)
        pace.sent(max(0.0, -wait))
    return pace, time.monotonic() - began


def feed(broker: str, rate: float, seconds: float, symbols: list[str], flavor: str = "tansu") -> dict[str, Any]:
    """Prepare, announce, send; what was achieved."""
    settings = load_settings(broker=broker, broker_flavor=flavor)
    started = time.monotonic()
    start, prepared = prepare(settings, rate, seconds, symbols)
    print(json.dumps({"sending": True, "prepared_s": time.monotonic() - started}), flush=True)
    with EventProducer(settings, None, **{"linger.ms": FEED_LINGER_MS}) as producer:
        pace, sending_s = send(producer, prepared, start, seconds)
    traded = {key for _, key, _ in prepared[:pace.produced]}
    return {"produced": pace.produced, "seconds": sending_s, "per_s": pace.produced / sending_s,
            "behind_s": pace.behind_s, "max_behind_s": pace.max_behind_s, "symbols": len(traded)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steady_feed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--rate", type=float, default=5000.0, help="trades per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--symbols", type=int, default=4, help="symbols in the feed")
    parser.add_argument("--flavor", choices=("tansu", "kafka"), default="tansu", help="the broker's engine")
    args = parser.parse_args(argv)
    print(json.dumps(feed(args.broker, args.rate, args.seconds, symbol_names(args.symbols), args.flavor)))


if __name__ == "__main__":
    main()
