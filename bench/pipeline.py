"""End-to-end consumer throughput on one embedded broker: raw ceiling, ticktide, Quix Streams.

    python -m bench.pipeline [--trades N] [--symbols K] [--runs R] [--skip-quix]

Starts a fresh embedded broker, creates the catalog topics and produces N synthetic trades
of K symbols into market.trades once (fixed seed, trade times from 2024-07-19, so every
consumer sees a replay). Then, R times each, interleaved (a, b, c, a, b, c, ...):

(a) ``bench.raw_consumer``: aiokafka getmany + AvroCodec, no group, in its own process
    (then again with ``--no-decode``: the fetch-only line shows what decoding costs);
(b) ``ticktide worker`` in a fresh consumer group, progress read from /health;
(c) ``bench.quix_ohlcv``: Quix Streams 1-minute OHLCV with RocksDB state, own process.

Every contender's clock starts at its first event (group joins excluded) and stops at the
N-th. The worker is sampled every POLL_S seconds: its rate is measured from the first
sample that shows processed > 0 to the moment the count reaches N, linearly interpolated
between the two samples around N. The events before the first sample are not timed: the
rate over the measured span is the figure, and its "s to N" is N / that rate. Peak RSS is
each process's VmHWM (the worker's read when it reaches N). Medians over the runs are
printed, then the ratios b/a and b/c.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.raw_consumer import TOPIC, peak_rss_mb
from streams.devstack.broker import EmbeddedBroker, die_with_parent, free_port
from streams.ingest import synthetic_trades
from streams.kafka.admin import create_topics, describe
from streams.kafka.producer import EventProducer
from streams.settings import load_settings

# What (b) measures: change these when the agents or the /health shape change.
AGENT = "market.trades"
HEALTH_PATH = "/health"
PROCESSED_KEYS = ("agents", AGENT, "processed")
LATENCY_KEYS = ("pipeline", "latency_ms")

POLL_S = 0.2
SEED = 7
REPLAY_START = datetime(2024, 7, 19, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
REPO = Path(__file__).resolve().parents[1]
WORKER_JOIN_TIMEOUT_S = 90.0


@dataclass
class Outcome:
    """One contender's runs: events/s and peak RSS per run, or why it could not run."""

    label: str
    rates: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None

    def add(self, result: dict[str, Any]) -> None:
        self.rates.append(float(result["events_per_s"]))
        self.seconds.append(float(result["seconds"]))
        if result.get("peak_rss_mb") is not None:
            self.rss_mb.append(float(result["peak_rss_mb"]))
        self.extra = result

    @property
    def rate(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


def symbol_names(count: int) -> list[str]:
    """The first ``count`` known symbols, then made-up ones."""
    return [*SYMBOLS, *(f"SYM{n}USDT" for n in range(count))][:count]


def produce(bootstrap: str, trades: int, symbols: list[str]) -> tuple[float, int]:
    """Create the topics and produce the trades once: (seconds taken, partitions)."""
    settings = load_settings(broker=bootstrap, broker_flavor="tansu")
    create_topics(settings)
    started = time.perf_counter()
    with EventProducer(settings) as producer:
        for _, trade in zip(range(trades), synthetic_trades(symbols, seed=SEED, start=REPLAY_START),
                            strict=False):
            producer.send(TOPIC, trade)
    seconds = time.perf_counter() - started
    info = describe(settings, TOPIC)
    if info.records != trades:
        raise SystemExit(f"{TOPIC} holds {info.records} records, expected {trades}")
    return seconds, info.partitions


def run_json(module: str, bootstrap: str, trades: int, timeout: float, *flags: str) -> dict[str, Any]:
    """Run ``python -m module`` to completion; its last stdout line as JSON."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, "--broker", bootstrap, "--trades", str(trades),
             "--timeout", str(timeout), *flags],
            cwd=REPO, capture_output=True, text=True, timeout=timeout + 60,
            preexec_fn=die_with_parent,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{module} did not finish in {timeout + 60:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = done.stderr.strip().splitlines()
        raise RuntimeError(f"{module} exited {done.returncode}: {errors[-1] if errors else 'no output'}")
    return dict(json.loads(lines[-1]))


def dig(data: Any, keys: Sequence[str]) -> Any:
    """data[k1][k2]...; None where a level is missing."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def rate_to(samples: Sequence[tuple[float, int]], target: int) -> float:
    """Events/s from the first (time, processed > 0) sample to ``target``, interpolated
    between the last two samples (the last one has reached ``target``)."""
    if len(samples) < 2:
        raise RuntimeError(f"the worker reached {target} events by its first /health sample: "
                           "too few trades to measure, use more --trades")
    t_first, n_first = samples[0]
    (t_prev, n_prev), (t_last, n_last) = samples[-2], samples[-1]
    t_target = t_prev + (target - n_prev) * (t_last - t_prev) / (n_last - n_prev)
    return (target - n_first) / (t_target - t_first)


def get_health(url: str) -> dict[str, Any] | None:
    """The worker's /health, or None while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(json.loads(response.read()))
    except (OSError, ValueError):
        return None


def log_tail(log: Path, lines: int = 3) -> str:
    """The last lines of a log, on one line (the log itself is in a temporary directory)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def run_worker(bootstrap: str, trades: int, workdir: Path, timeout: float) -> dict[str, Any]:
    """Start a ticktide worker in a fresh group, poll /health until ``trades`` processed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTIDE_")}
    env.update({
        "TICKTIDE_BROKER": bootstrap, "TICKTIDE_BROKER_FLAVOR": "tansu",
        "TICKTIDE_APP_ID": f"bench-{uuid.uuid4().hex[:8]}", "TICKTIDE_DATA_DIR": str(workdir / "data"),
        "TICKTIDE_WEB_PORT": str(port), "TICKTIDE_SESSION_TIMEOUT_S": "6",
        "TICKTIDE_HEARTBEAT_INTERVAL_S": "1",
    })
    log = workdir / "worker.log"
    url = f"http://127.0.0.1:{port}{HEALTH_PATH}"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    try:
        samples: list[tuple[float, int]] = []
        deadline = time.monotonic() + WORKER_JOIN_TIMEOUT_S + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited {process.returncode}: {log_tail(log)}")
            asked = time.monotonic()
            health = get_health(url)
            answered = time.monotonic()
            processed = int(dig(health, PROCESSED_KEYS) or 0)
            if processed > 0:
                samples.append(((asked + answered) / 2, processed))
            if processed >= trades:
                rate = rate_to(samples, trades)
                return {"events_per_s": rate, "seconds": trades / rate, "peak_rss_mb": peak_rss_mb(process.pid),
                        "latency_ms": dig(health, LATENCY_KEYS), "samples": len(samples)}
            time.sleep(max(0.0, POLL_S - (time.monotonic() - asked)))
        last = samples[-1][1] if samples else 0
        raise RuntimeError(f"worker processed {last} of {trades} before the timeout: {log_tail(log)}")
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def attempt(outcome: Outcome, run: Any) -> None:
    """Run one measurement; a failure is recorded (and printed), not raised."""
    try:
        outcome.add(run())
        print(f"  {outcome.label}: {outcome.rates[-1]:,.0f} events/s", flush=True)
    except RuntimeError as exc:
        outcome.failure = str(exc)
        print(f"  {outcome.label}: FAILED: {exc}", flush=True)


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def _latency(outcome: Outcome, key: str) -> str:
    latency = outcome.extra.get("latency_ms")
    if not isinstance(latency, dict) or latency.get(key) is None:
        return "n/a" if "latency_ms" in outcome.extra else "-"
    return f"{float(latency[key]):,.1f}"


def report(outcomes: Sequence[Outcome], raw: Outcome, worker: Outcome, quix: Outcome | None) -> str:
    """The table of ``outcomes`` (medians over runs) and the ratios b/a and b/c."""
    lines = [f"{'contender':<40} {'events/s':>10} {'s to N':>7} {'peak RSS MB':>12} {'p50 ms':>8} "
             f"{'p99 ms':>8}  runs (events/s)"]
    for o in outcomes:
        rss = statistics.median(o.rss_mb) if o.rss_mb else None
        seconds = statistics.median(o.seconds) if o.seconds else None
        runs = " / ".join(f"{r:,.0f}" for r in o.rates) or "-"
        lines.append(f"{o.label:<40} {_fmt(o.rate):>10} {_fmt(seconds, '.1f'):>7} {_fmt(rss, ',.1f'):>12} "
                     f"{_latency(o, 'p50'):>8} {_latency(o, 'p99'):>8}  {runs}")
        if o.failure:
            lines.append(f"    failed: {o.failure}")
    a, b, c = raw.rate, worker.rate, quix.rate if quix else None
    lines.append("")
    if a and b:
        lines.append(f"b/a = {b / a:.3f}  (the raw ceiling is {a / b:.1f}x ticktide)")
    if b and c:
        lines.append(f"b/c = {b / c:.3f}  (Quix Streams is {c / b:.1f}x ticktide)")
    if quix and quix.extra:
        q = quix.extra
        lines.append(f"Quix state store (RocksDB): {'works' if q.get('state_ok') else 'NOT verified'} "
                     f"({q.get('candles')} candles closed, {q.get('late')} late trades dropped, "
                     f"{q.get('state_files')} files in its state dir)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=200_000, help="trades produced and consumed")
    parser.add_argument("--symbols", type=int, default=4, help="symbols in the feed")
    parser.add_argument("--runs", type=int, default=3, help="runs of each contender; medians shown")
    parser.add_argument("--skip-quix", action="store_true", help="leave out Quix Streams")
    args = parser.parse_args(argv)
    if args.trades < 1000 or args.symbols < 1 or args.runs < 1:
        parser.error("--trades must be at least 1000, --symbols and --runs at least 1")
    symbols = symbol_names(args.symbols)
    raw = Outcome("(a) raw: aiokafka getmany + AvroCodec")
    fetch = Outcome("    the same, fetch only (no decode)")
    worker = Outcome(f"(b) ticktide worker ({AGENT})")
    quix = Outcome("(c) Quix Streams 1m OHLCV, RocksDB")
    outcomes = [raw, worker] if args.skip_quix else [raw, worker, quix]
    shown = [raw, fetch, *outcomes[1:]]
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        print(f"broker {broker.bootstrap}; producing {args.trades:,} trades of {', '.join(symbols)} "
              f"into {TOPIC} (seed {SEED}, from {REPLAY_START:%Y-%m-%d})", flush=True)
        seconds, partitions = produce(broker.bootstrap, args.trades, symbols)
        print(f"produced in {seconds:.1f} s ({args.trades / seconds:,.0f}/s)", flush=True)
        for run in range(1, args.runs + 1):
            print(f"run {run} of {args.runs}", flush=True)
            workdir = Path(tmp) / f"worker-{run}"
            workdir.mkdir()
            attempt(raw, lambda: run_json("bench.raw_consumer", broker.bootstrap, args.trades,
                                          30 + args.trades / 10_000))
            attempt(fetch, lambda: run_json("bench.raw_consumer", broker.bootstrap, args.trades,
                                            30 + args.trades / 10_000, "--no-decode"))
            attempt(worker, lambda: run_worker(broker.bootstrap, args.trades, workdir,  # noqa: B023
                                               60 + args.trades / 500))
            if not args.skip_quix and not (quix.failure and not quix.rates):
                attempt(quix, lambda: run_json("bench.quix_ohlcv", broker.bootstrap, args.trades,
                                               60 + args.trades / 2_000))
    print()
    print(f"{args.trades:,} trades of {len(symbols)} symbols, {TOPIC} with {partitions} partitions, "
          f"median of {args.runs} run(s); every clock starts at the contender's first event")
    print(report(shown, raw, worker, None if args.skip_quix else quix))


if __name__ == "__main__":
    main()
