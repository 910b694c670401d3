"""Side-by-side candle pipelines on the embedded broker, for each symbol count, then latency.

    python -m bench.pipeline [--trades N] [--symbols 4,5000] [--runs R] [--skip-quix]
                             [--quix-python PATH] [--latency-rate 5000] [--latency-seconds 60]
                             [--latency-symbols 4] [--latency-engines tansu,kafka] [--skip-latency]

Throughput, for each symbol count K: a fresh embedded broker, the catalog topics, N
synthetic trades spread over K symbols produced once into market.trades (fixed seed,
trade times from 2024-07-19, so every contender reads a replay). Then R times each,
interleaved (a, fetch, b, c, a, ...), every contender in its own process, every decoding
contender with ticktide's hot-path decoder and the worker's checks
(``TickDecoder.decode_checked``, partition check on):

(a) the limit, ``bench.plain_loop``: aiokafka getmany + TickDecoder + a plain dict OHLCV
    fold (open/high/low/close/volume for 1s/1m/5m windows, nothing else); its fetch-only
    line (``--no-decode``) shows what fetching alone costs;
(b) a ticktide worker (``python -m streams.cli worker``) in a fresh app id, progress read
    from /health; its RSS is sampled with every /health read (first and last sample shown);
(c) ``bench.quix_ohlcv``: Quix Streams 1-minute OHLCV with RocksDB state, same decoder.

Every clock starts at the contender's first event (group joins excluded) and stops at the
N-th. The worker is sampled every POLL_S seconds: its rate runs from the first sample that
shows processed > 0 to the moment the count reaches N, linearly interpolated between the
two samples around N; "s to N" is N / that rate. Peak RSS is each process's VmHWM. Each
table shows medians over the runs and the ratios b/a (ticktide / limit) and b/c
(ticktide / Quix).

Latency (``bench.latency_run``): for each --latency-engines broker (default the embedded
one; ``kafka``: one Apache Kafka node) and --latency-symbols count, a fresh broker, one
worker, and ``bench.steady_feed`` sending live trades (times = now) at --latency-rate for
--latency-seconds; the worker's /health ``pipeline.latency_ms`` (trade record timestamp
to fold) at the end and over the second half, its RSS, whether it kept up, and the rate
the producer really achieved.

Quix Streams pins confluent-kafka below the version ticktide installs, so it may live in
another virtualenv: ``--quix-python`` runs (c) with that interpreter (default: this one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.contest import TOPIC, load_note, symbol_names
from bench.latency_run import report as latency_report
from bench.latency_run import run_latency
from bench.worker_process import REPO, Sample, Worker
from streams.devstack.broker import EmbeddedBroker, die_with_parent
from streams.ingest import synthetic_trades
from streams.kafka.admin import create_topics, describe
from streams.kafka.producer import EventProducer
from streams.settings import load_settings

POLL_S = 0.2
SEED = 7
REPLAY_START = datetime(2024, 7, 19, tzinfo=UTC)


@dataclass
class Outcome:
    """One contender's runs: events/s, seconds and RSS per run, or why it could not run."""

    label: str
    rates: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    first_mb: list[float] = field(default_factory=list)
    last_mb: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None

    def add(self, result: dict[str, Any]) -> None:
        self.rates.append(float(result["events_per_s"]))
        self.seconds.append(float(result["seconds"]))
        for key, values in (("peak_rss_mb", self.peak_mb), ("rss_first_mb", self.first_mb),
                            ("rss_last_mb", self.last_mb)):
            if result.get(key) is not None:
                values.append(float(result[key]))
        self.extra = result

    @property
    def rate(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


@dataclass
class Contenders:
    """The rows of one table."""

    limit: Outcome = field(default_factory=lambda: Outcome("(a) limit: getmany + TickDecoder + dict OHLCV"))
    fetch: Outcome = field(default_factory=lambda: Outcome("    the same, fetch only (no decode, no fold)"))
    worker: Outcome = field(default_factory=lambda: Outcome("(b) ticktide worker (market.trades agent)"))
    quix: Outcome = field(default_factory=lambda: Outcome("(c) Quix Streams 1m OHLCV + TickDecoder"))

    def rows(self, with_quix: bool) -> list[Outcome]:
        return [self.limit, self.fetch, self.worker, *([self.quix] if with_quix else [])]


@dataclass(frozen=True)
class Produced:
    """The replay every contender reads."""

    seconds: float
    partitions: int
    symbols_traded: int


def produce(bootstrap: str, trades: int, symbols: list[str]) -> Produced:
    """Create the topics and produce the trades once."""
    settings = load_settings(broker=bootstrap, broker_flavor="tansu")
    create_topics(settings)
    traded: set[str] = set()
    started = time.perf_counter()
    with EventProducer(settings) as producer:
        feed = synthetic_trades(symbols, seed=SEED, start=REPLAY_START)
        for _, trade in zip(range(trades), feed, strict=False):
            producer.send(TOPIC, trade)
            traded.add(trade.symbol)
    seconds = time.perf_counter() - started
    info = describe(settings, TOPIC)
    if info.records != trades:
        raise SystemExit(f"{TOPIC} holds {info.records} records, expected {trades}")
    return Produced(seconds, info.partitions, len(traded))


def run_json(module: str, bootstrap: str, trades: int, timeout: float, *flags: str,
             python: str = sys.executable) -> dict[str, Any]:
    """Run ``python -m module`` to completion; its last stdout line as JSON."""
    try:
        done = subprocess.run(
            [python, "-m", module, "--broker", bootstrap, "--trades", str(trades), "--timeout", str(timeout),
             *flags],
            cwd=REPO, capture_output=True, text=True, timeout=timeout + 60, preexec_fn=die_with_parent,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{module} did not finish in {timeout + 60:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = done.stderr.strip().splitlines()
        raise RuntimeError(f"{module} exited {done.returncode}: {errors[-1] if errors else 'no output'}")
    return dict(json.loads(lines[-1]))


def rate_to(samples: Sequence[Sample], target: int) -> float:
    """Events/s from the first sample with processed > 0 to ``target``, interpolated between
    the last two samples (the last one has reached ``target``)."""
    if len(samples) < 2:
        raise RuntimeError(f"the worker reached {target} events by its first /health sample: "
                           "too few trades to measure, use more --trades")
    first, prev, last = samples[0], samples[-2], samples[-1]
    t_target = prev.at + (target - prev.processed) * (last.at - prev.at) / (last.processed - prev.processed)
    return (target - first.processed) / (t_target - first.at)


def measure_worker(worker: Worker, trades: int, timeout: float) -> dict[str, Any]:
    """Poll the worker every POLL_S until ``trades`` are processed; rate and RSS."""
    samples: list[Sample] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sample = worker.sample()
        if sample.processed > 0:
            samples.append(sample)
        if sample.processed >= trades:
            rate = rate_to(samples, trades)
            rss = [s.rss_mb for s in samples if s.rss_mb is not None]
            return {"events_per_s": rate, "seconds": trades / rate, "peak_rss_mb": worker.peak_rss_mb(),
                    "rss_first_mb": rss[0] if rss else None, "rss_last_mb": rss[-1] if rss else None,
                    "samples": len(samples)}
        time.sleep(max(0.0, POLL_S - (time.monotonic() - sample.at)))
    last = samples[-1].processed if samples else 0
    raise RuntimeError(f"worker processed {last} of {trades} before the timeout")


def run_worker(bootstrap: str, trades: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """A ticktide worker in a fresh app id, measured to ``trades`` processed."""
    with Worker(bootstrap, workdir) as worker:
        try:
            return measure_worker(worker, trades, 90.0 + timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {worker.log.read_text(errors='replace')[-300:]}") from None


def attempt(outcome: Outcome, run: Callable[[], dict[str, Any]]) -> None:
    """Run one measurement; a failure is recorded (and printed), not raised."""
    try:
        outcome.add(run())
        print(f"  {outcome.label.strip()}: {outcome.rates[-1]:,.0f} events/s", flush=True)
    except RuntimeError as exc:
        outcome.failure = str(exc)
        print(f"  {outcome.label.strip()}: FAILED: {exc}", flush=True)


def quix_missing(python: str) -> str | None:
    """Why ``python`` cannot run the Quix contender, or None if it can."""
    check = subprocess.run([python, "-c", "import quixstreams"], capture_output=True, text=True)
    if check.returncode == 0:
        return None
    return f"quixstreams is not importable by {python} (install the bench extra there or pass --quix-python)"


def run_round(contenders: Contenders, bootstrap: str, trades: int, workdir: Path, quix_python: str | None) -> None:
    """One run of every contender, in order."""
    c = contenders
    attempt(c.limit, lambda: run_json("bench.plain_loop", bootstrap, trades, 30 + trades / 5_000))
    attempt(c.fetch, lambda: run_json("bench.plain_loop", bootstrap, trades, 30 + trades / 5_000, "--no-decode"))
    attempt(c.worker, lambda: run_worker(bootstrap, trades, workdir, 60 + trades / 200))
    if quix_python and not (c.quix.failure and not c.quix.rates):
        attempt(c.quix, lambda: run_json("bench.quix_ohlcv", bootstrap, trades, 60 + trades / 1_000,
                                         python=quix_python))


def _fmt(values: Sequence[float], spec: str = ",.1f") -> str:
    return "n/a" if not values else format(statistics.median(values), spec)


def _row(o: Outcome) -> list[str]:
    during = f"{_fmt(o.first_mb, ',.0f')} -> {_fmt(o.last_mb, ',.0f')}" if o.first_mb else "-"
    runs = " / ".join(f"{r:,.0f}" for r in o.rates) or "-"
    line = (f"{o.label:<46} {_fmt(o.rates, ',.0f'):>10} {_fmt(o.seconds):>7} {_fmt(o.peak_mb):>9} "
            f"{during:>15}  {runs}")
    return [line, f"    failed: {o.failure}"] if o.failure else [line]


def _ratio(name: str, b: Outcome, other: Outcome, meaning: str) -> str:
    """The ratio of the medians, then run by run (the two contenders ran one after the other,
    so a run's ratio is free of what the machine did between runs)."""
    if not b.rate or not other.rate:
        return f"{name} = n/a"
    ratio = f"{name} = {b.rate / other.rate:.3f}  ({meaning})"
    if len(b.rates) != len(other.rates):  # a run failed: which rates pair up is not known
        return ratio
    return ratio + "; run by run " + " / ".join(f"{x / y:.3f}" for x, y in zip(b.rates, other.rates, strict=True))


def table(c: Contenders, with_quix: bool) -> str:
    """The rows (medians over runs), the ratios and what the contenders reported besides."""
    lines = [f"{'contender':<46} {'events/s':>10} {'s to N':>7} {'peak MB':>9} {'RSS MB 1st->last':>15}  "
             "runs (events/s)"]
    for outcome in c.rows(with_quix):
        lines.extend(_row(outcome))
    lines.append(_ratio("b/a", c.worker, c.limit, "ticktide / limit; issue 14 asks >= 0.5"))
    if with_quix:
        lines.append(_ratio("b/c", c.worker, c.quix, "ticktide / Quix Streams; issue 14 asks > 1"))
    rejected = {o.label.split(":")[0].strip(): o.extra.get("rejected") for o in (c.limit, c.quix)}
    if any(rejected.values()):
        lines.append(f"records refused by the decoder: {rejected}")
    if with_quix and c.quix.extra:
        q = c.quix.extra
        lines.append(f"Quix state store (RocksDB): {'works' if q.get('state_ok') else 'NOT verified'} "
                     f"({q.get('candles')} candles closed, {q.get('late')} late trades dropped, "
                     f"{q.get('state_files')} files in its state dir)")
    return "\n".join(lines)


def throughput(count: int, args: argparse.Namespace, tmp: Path, quix_python: str | None) -> str:
    """Every contender R times on a fresh broker with ``count`` symbols; the table."""
    symbols = symbol_names(count)
    contenders = Contenders()
    if args.quix_missing:
        contenders.quix.failure = args.quix_missing
    load_before = load_note()
    with EmbeddedBroker() as broker:
        print(f"== {count:,} symbols: broker {broker.bootstrap}; producing {args.trades:,} trades into {TOPIC}",
              flush=True)
        produced = produce(broker.bootstrap, args.trades, symbols)
        print(f"produced in {produced.seconds:.1f} s ({args.trades / produced.seconds:,.0f}/s)", flush=True)
        for run in range(1, args.runs + 1):
            print(f"run {run} of {args.runs}", flush=True)
            run_round(contenders, broker.bootstrap, args.trades, tmp / f"worker-{count}-{run}", quix_python)
    head = (f"== {count:,} symbols ({produced.symbols_traded:,} traded): {args.trades:,} trades, {TOPIC} with "
            f"{produced.partitions} partitions, fresh broker, median of {args.runs} run(s); "
            f"every clock starts at the contender's first event; {load_before} before, {load_note()} after")
    return f"{head}\n{table(contenders, not args.skip_quix)}"


def counts(text: str) -> list[int]:
    """'4,5000' -> [4, 5000] (argparse type)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of symbol counts: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"symbol counts must be at least 1: {text!r}")
    return values


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=200_000, help="trades produced and consumed per count")
    parser.add_argument("--symbols", type=counts, default=[4, 5000], help="symbol counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs of each contender; medians shown")
    parser.add_argument("--skip-quix", action="store_true", help="leave out Quix Streams")
    parser.add_argument("--quix-python", default=sys.executable, help="the Python that runs Quix Streams")
    parser.add_argument("--latency-rate", type=float, default=5000.0, help="trades/s of the latency run")
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="length of the latency run")
    parser.add_argument("--latency-symbols", type=counts, default=[4], help="symbol counts of the latency run")
    parser.add_argument("--latency-engines", default="tansu",
                        help="brokers of the latency run, comma-separated: tansu (embedded), kafka (one Apache "
                             "Kafka node: Java 17 and Maven, `make kafka-jars`)")
    parser.add_argument("--skip-latency", action="store_true", help="leave out the latency run")
    args = parser.parse_args(argv)
    if args.trades < 1000 or args.runs < 1:
        parser.error("--trades must be at least 1000 and --runs at least 1")
    if args.latency_rate <= 0 or args.latency_seconds < 5:
        parser.error("--latency-rate must be positive and --latency-seconds at least 5")
    args.latency_engines = args.latency_engines.split(",")
    if not set(args.latency_engines) <= {"tansu", "kafka"}:
        parser.error("--latency-engines takes tansu and kafka")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    quix_python = None if args.skip_quix else args.quix_python
    args.quix_missing = quix_missing(quix_python) if quix_python else None
    tables: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for count in args.symbols:
            tables.append(throughput(count, args, Path(tmp), quix_python))
        if not args.skip_latency:
            for engine in args.latency_engines:
                for count in args.latency_symbols:
                    print(f"== latency run on {engine}: {args.latency_rate:,.0f} trades/s for "
                          f"{args.latency_seconds:.0f} s, {count:,} symbols", flush=True)
                    run = run_latency(args.latency_rate, args.latency_seconds, count,
                                      Path(tmp) / f"latency-{engine}-{count}", engine)
                    tables.append(latency_report(run))
    print()
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
