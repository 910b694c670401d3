"""The steady-rate latency run: one ticktide worker fed live trades at a steady rate.

A fresh broker (the embedded one, or with ``engine="kafka"`` one Apache Kafka node) and
topics, one worker, waited for until it is assigned; then
``bench.steady_feed`` in its own process encodes its trades and sends them at RATE/s for
SECONDS (trade times = now). The worker is sampled every SAMPLE_S: /health (processed, ``pipeline.latency_ms``)
and its RSS. After the feed stops, the worker gets up to DRAIN_TIMEOUT_S to fold what is
left. Reported: the rate the feed achieved, the worker's latency p50/p99 at the feed's end
(its window is the last LATENCY_WINDOW folds) and the range of its p99 over the second
half of the feed, RSS at start and end, and whether it kept up; and how far behind the
agents after the candle fold were (``DOWNSTREAM``: the analysis reads the candles, the
ledger the marks) at the feed's end, and when they caught up. Beside the worker, the
broker's floor (``bench.broker_floor``): the same latency seen by a plain consumer of
market.trades that folds nothing, so what ticktide adds to the broker's own reads apart.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.broker_floor import BrokerFloor
from bench.contest import TOPIC, load_note
from bench.worker_process import REPO, Sample, Worker, dig
from streams.devstack.broker import EmbeddedBroker, die_with_parent
from streams.devstack.kafka_cluster import KafkaCluster
from streams.kafka.admin import create_topics, end_offsets_of
from streams.settings import Settings, load_settings

SAMPLE_S = 1.0
DRAIN_TIMEOUT_S = 30.0
LATENCY_WINDOW = 20_000  # streams.ops.metrics.LatencyWindow's default size
KEPT_UP_S = 1.0  # at the feed's end, at most this many seconds of trades not yet folded
DOWNSTREAM = {"market.candles": "analysis.candles", "trading.commands": "trading.ledger"}
"""The candle fold's outputs the same worker's Faust agents read, and the agent reading each."""


@dataclass
class LatencyRun:
    """What one steady-rate run saw."""

    rate: float
    seconds: float
    symbols: int
    engine: str = "tansu"
    analysis_intervals: str = ""
    feed: dict[str, Any] = field(default_factory=dict)
    prepared_s: float | None = None
    start: Sample | None = None
    during: list[Sample] = field(default_factory=list)
    end: Sample | None = None
    floor_ms: dict[str, float] | None = None
    drained: Sample | None = None
    drain_s: float | None = None
    behind_at_end: dict[str, int] = field(default_factory=dict)
    behind_after: dict[str, int] = field(default_factory=dict)
    settle_s: float | None = None
    peak_rss_mb: float | None = None
    failure: str | None = None
    load_before: str = ""
    load_after: str = ""


def start_feed(bootstrap: str, rate: float, seconds: float, symbols: int, log: Path,
               engine: str = "tansu") -> subprocess.Popen[str]:
    """``python -m bench.steady_feed`` in its own process; its JSON comes on stdout."""
    with log.open("w") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.steady_feed", "--broker", bootstrap, "--rate", str(rate),
             "--seconds", str(seconds), "--symbols", str(symbols), "--flavor", engine],
            cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True, preexec_fn=die_with_parent)


def follow(worker: Worker, settings: Settings, floor: BrokerFloor, feed: subprocess.Popen[str], run: LatencyRun,
           log: Path) -> None:
    """Wait while the feed prepares, sample the worker while it sends; its report, and the
    broker floor's latency at its end, into ``run``."""
    assert feed.stdout is not None
    announced = feed.stdout.readline()  # blocks until the feed starts sending (or dies)
    if announced:
        run.prepared_s = float(json.loads(announced)["prepared_s"])
        run.start = worker.sample()
        while feed.poll() is None:
            run.during.append(worker.sample())
            time.sleep(SAMPLE_S)
    lines = feed.stdout.read().strip().splitlines()
    if feed.wait() != 0 or not lines:
        raise RuntimeError(f"feed exited {feed.returncode}: {log.read_text()[-300:] or 'no output'}")
    run.feed = dict(json.loads(lines[-1]))
    run.end = worker.sample()
    run.behind_at_end = behind(settings, run.end)
    run.floor_ms = floor.latency_ms()


def drain(worker: Worker, run: LatencyRun) -> None:
    """Give the worker DRAIN_TIMEOUT_S to fold every produced trade."""
    produced, started = int(run.feed["produced"]), time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        sample = worker.sample()
        if sample.processed >= produced:
            run.drained, run.drain_s = sample, time.monotonic() - started
            return
        time.sleep(0.5)
    run.drained = worker.sample()


def behind(settings: Settings, sample: Sample) -> dict[str, int]:
    """Per DOWNSTREAM topic, the records on it its agent has not processed yet."""
    ends = end_offsets_of(settings, DOWNSTREAM)
    processed = dig(sample.health, ("agents",)) or {}
    return {topic: sum(ends[topic]) - int((processed.get(agent) or {}).get("processed", 0))
            for topic, agent in DOWNSTREAM.items()}


def settle(worker: Worker, settings: Settings, run: LatencyRun) -> None:
    """How far behind the agents after the candle fold were when the feed stopped, and
    whether they caught up within DRAIN_TIMEOUT_S."""
    started = time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        run.behind_after = behind(settings, worker.sample())
        if not any(n > 0 for n in run.behind_after.values()):
            run.settle_s = time.monotonic() - started
            return
        time.sleep(0.5)


def run_latency(rate: float, seconds: float, symbols: int, workdir: Path, engine: str = "tansu",
                analysis_intervals: str = "") -> LatencyRun:
    """One steady-rate run on its own broker (``engine``: ``tansu``, the embedded one, or
    ``kafka``, one Apache Kafka node), the worker analysing ``analysis_intervals`` (its
    setting; empty: every window); a failure is recorded in the result."""
    run = LatencyRun(rate, seconds, symbols, engine, analysis_intervals, load_before=load_note())
    try:
        with EmbeddedBroker() if engine == "tansu" else KafkaCluster(nodes=1) as broker:
            settings = load_settings(broker=broker.bootstrap, broker_flavor=engine)
            create_topics(settings)
            chosen = {"TICKTIDE_ANALYSIS_INTERVALS": analysis_intervals} if analysis_intervals else None
            with Worker(broker.bootstrap, workdir, engine, chosen) as worker:
                worker.wait_ready()
                log = workdir / "feed.log"
                with BrokerFloor(settings, TOPIC) as floor:
                    feed = start_feed(broker.bootstrap, rate, seconds, symbols, log, engine)
                    follow(worker, settings, floor, feed, run, log)
                drain(worker, run)
                settle(worker, settings, run)
                run.peak_rss_mb = worker.peak_rss_mb()
    except RuntimeError as exc:
        run.failure = str(exc)
    run.load_after = load_note()
    return run


def _ms(latency: dict[str, float] | None, key: str) -> str:
    return "n/a" if latency is None else f"{latency[key]:,.0f}"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def feed_line(run: LatencyRun) -> str:
    """What the feed achieved, and a warning if it fell short of the asked rate."""
    f = run.feed
    line = (f"feed: {f['produced']:,} trades over {f['symbols']:,} symbols in {f['seconds']:.1f} s = "
            f"{f['per_s']:,.0f}/s (asked {run.rate:,.0f}/s); last trade sent {f['behind_s']:.2f} s behind "
            f"schedule (worst {f['max_behind_s']:.2f} s); encoded beforehand in {run.prepared_s or 0:.0f} s")
    if f["per_s"] < 0.97 * run.rate or f["behind_s"] > 1.0:
        line += (f"\n  NOTE: the producer did not keep {run.rate:,.0f}/s on this box: the figures below are "
                 f"at {f['per_s']:,.0f}/s")
    return line


def window_line(what: str, latency: dict[str, float] | None) -> str:
    """p50/p99 of one /health reading, with how many folds its window holds."""
    if latency is None:
        return f"trade-to-candle latency {what}: n/a (nothing folded yet)"
    folds = int(latency.get("samples", 0))
    return (f"trade-to-candle latency {what} (its last {folds:,} folds; /health keeps up to "
            f"{LATENCY_WINDOW:,}): p50 {_ms(latency, 'p50')} ms, p99 {_ms(latency, 'p99')} ms")


def floor_line(latency: dict[str, float] | None) -> str:
    """p50/p99 of the broker floor (``bench.broker_floor``) at the feed's end."""
    what = ("the broker's floor at the feed's end (a plain aiokafka consumer reading market.trades beside the "
            "worker, with its trade reader's fetch wait, folding nothing")
    if latency is None:
        return f"{what}): n/a (it read nothing)"
    return (f"{what}; its last {int(latency.get('samples', 0)):,} records): p50 {_ms(latency, 'p50')} ms, "
            f"p99 {_ms(latency, 'p99')} ms")


def latency_lines(run: LatencyRun) -> list[str]:
    """p50/p99 at the feed's end, the p99 range over the feed's second half, and p50/p99
    once the backlog is folded if the worker was behind (the trades it had not folded yet
    are in no reading taken at the feed's end)."""
    assert run.end is not None
    lines = [window_line("at the feed's end", run.end.latency_ms)]
    second_half = [s.latency_ms["p99"] for s in run.during[len(run.during) // 2:] if s.latency_ms]
    if second_half:
        lines.append(f"p99 over the feed's second half ({len(second_half)} readings, one per "
                     f"{SAMPLE_S:.0f} s): min {min(second_half):,.0f}, median "
                     f"{statistics.median(second_half):,.0f}, max {max(second_half):,.0f} ms")
    lines.append(floor_line(run.floor_ms))
    if run.drained is not None and run.drained.processed > run.end.processed:
        lines.append(window_line("after the backlog", run.drained.latency_ms))
    return lines


def kept_up_line(run: LatencyRun) -> str:
    """Processed vs produced at the feed's end and after the drain."""
    assert run.end is not None
    produced, at_end = int(run.feed["produced"]), run.end.processed
    behind = produced - at_end
    verdict = "kept up" if behind <= KEPT_UP_S * run.feed["per_s"] else "did NOT keep up"
    line = f"{verdict}: processed {at_end:,} of {produced:,} when the feed stopped ({behind:,} behind)"
    if run.drain_s is not None:
        return line + f", all {produced:,} {run.drain_s:.1f} s later"
    drained = run.drained.processed if run.drained else 0
    return line + f", {drained:,} after {DRAIN_TIMEOUT_S:.0f} s more"


def downstream_line(run: LatencyRun) -> str:
    """How far behind the candle fold's readers were when the feed stopped, and after."""
    def counts(behind: dict[str, int]) -> str:
        return ", ".join(f"{agent} {behind.get(topic, 0):,} records of {topic}" for topic, agent in DOWNSTREAM.items())

    line = f"agents after the candle fold, behind when the feed stopped: {counts(run.behind_at_end)}"
    if run.settle_s is not None:
        return line + f"; all read {run.settle_s:.1f} s later"
    return line + f"; {DRAIN_TIMEOUT_S:.0f} s later: {counts(run.behind_after)}"


def report(run: LatencyRun) -> str:
    """The latency block of one run."""
    broker = "the embedded broker" if run.engine == "tansu" else "Apache Kafka (one node)"
    head = (f"-- steady {run.rate:,.0f} trades/s for {run.seconds:.0f} s, {run.symbols:,} symbols, one ticktide "
            f"worker on {broker}, analysing {run.analysis_intervals or 'every window'}'s candles; "
            f"{run.load_before} before, {run.load_after} after")
    if run.failure or run.end is None or run.start is None:
        return f"{head}\nFAILED: {run.failure}"
    rss = [s.rss_mb for s in run.during if s.rss_mb is not None]
    memory = (f"worker RSS MB: {_mb(run.start.rss_mb)} at the feed's start (assigned, idle), "
              f"{_mb(rss[0] if rss else None)} -> {_mb(rss[-1] if rss else None)} first -> last sample while "
              f"it sent, {_mb(run.end.rss_mb)} at its end, peak {_mb(run.peak_rss_mb)}")
    lines = [head, feed_line(run), *latency_lines(run), kept_up_line(run), downstream_line(run), memory]
    return "\n".join(lines)
