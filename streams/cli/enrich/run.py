"""The run of `ticktide enrich backfill` (imported when the command runs: it loads the
SDK and Faust): its progress on stderr and its report on stdout. The work is
``streams.tools.backfill``'s."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from domain.enrich.batch import PendingBatch, TokenSplit, batch_limits, min_cacheable_tokens
from domain.enrich.budget import Budget
from streams.claude.batches import BatchClient, BatchStatus, batch_client_from
from streams.claude.client import ClaudeUnavailable
from streams.claude.enricher import client_from, limits_from
from streams.cli.safe_text import plain, printable
from streams.errors import ConfigError
from streams.kafka.codec import AvroCodec
from streams.kafka.producer import EventProducer
from streams.kafka.registry import registry_for
from streams.settings import Settings
from streams.tools.backfill import (
    Found,
    Planned,
    StateFile,
    Written,
    follow,
    plan,
    remembered,
    scan,
    write_answers,
)
from tables.enrichment import CACHE_TOPIC
from tables.response_log import logged_cache


class Run:
    """One backfill run: its clients, budget, state file, progress and report."""

    def __init__(self, settings: Settings, client: BatchClient, state: StateFile, poll_s: float,
                 console: Console, interrupted: threading.Event) -> None:
        self.settings, self.client, self.state, self.poll_s = settings, client, state, poll_s
        self.console, self.interrupted = console, interrupted
        self.budget = Budget(batch_limits(limits_from(settings)))
        self.written = Written()

    def finish(self, batch: PendingBatch, planned: Planned | None = None) -> None:
        """Follow a created batch to its end and write its answers back; forget it then."""
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=self.console, transient=False) as bar:
            task = bar.add_task(f"batch {batch.batch_id}: {len(batch.requests)} requests")

            def show(status: BatchStatus) -> None:
                counts = ", ".join(f"{n} {k}" for k, n in status.counts.items() if n)
                bar.update(task, description=f"batch {status.batch_id}: {status.processing_status} ({counts})")

            try:
                ended = follow(self.client, batch.batch_id, self.poll_s, self.interrupted, show)
            except ClaudeUnavailable as error:
                if error.reason != "http_404":
                    raise ClaudeUnavailable(error.reason, f"{error} (the batch stays remembered in "
                                            f"{self.state.path}: run the same command again)") from None
                self.console.print(f"batch {plain(batch.batch_id)} is unknown to the API ({plain(str(error))}): "
                                   "forgotten; its events are asked again")
                self.state.save([b for b in self.state.load() if b.batch_id != batch.batch_id])
                return
        if ended is None:
            self.console.print(
                f"interrupted: batch {batch.batch_id} keeps running at Anthropic and is remembered in "
                f"{self.state.path}; run the same command again to pick it up (nothing is asked twice)")
            raise typer.Exit(130)
        items = {cid: [str(n) for n in range(len(its))] for cid, its in batch.requests.items()}
        reservations = planned.reservations if planned else {}

        def settle(custom_id: str, used: TokenSplit) -> None:
            reservation = reservations.get(custom_id)
            if reservation is not None:
                self.budget.settle(reservation, time.time(), used.input_tokens, used.output)

        with EventProducer(self.settings) as producer:
            written = write_answers(self.settings, producer, batch, self.client.results(batch.batch_id, items),
                                    time.time, settle)
        self.state.save([b for b in self.state.load() if b.batch_id != batch.batch_id])
        self._report(batch.batch_id, written)
        self.written.answers += written.answers
        self.written.failed |= written.failed
        self.written.tokens += written.tokens

    def _report(self, batch_id: str, written: Written) -> None:
        print(f"batch {batch_id}: wrote {written.answers} answers to "
              f"{self.settings.topic_prefix}{CACHE_TOPIC}", flush=True)
        if written.left:
            print("  left for a later run: " + ", ".join(
                f"{n} {printable(why)}" for why, n in written.left.most_common()), flush=True)
        for detail in written.details:
            print(f"    {printable(detail)}", flush=True)
        if written.unknown:
            print(f"  ignored {len(written.unknown)} results for requests that were not asked: "
                  + ", ".join(printable(c)[:64] for c in written.unknown[:5]), flush=True)

    def ask(self, topics: list[str], start_us: int, end_us: int, chars_per_token: float, dry_run: bool) -> None:
        """Find what the range lacks, send it as one batch, write its answers."""
        codec = AvroCodec(registry_for(self.settings), self.settings.max_record_bytes)
        with (self.console.status(f"reading {', '.join(topics)} and the response log"),
              logged_cache(self.settings, codec, time.time(), reader="backfill") as cache):
            found = scan(self.settings, codec, topics, start_us, end_us, self.client.model, chars_per_token,
                         cache, time.time())
        _report_found(found)
        planned = plan(found, self.client, self.budget, self.settings.enrich_batch_max, time.time(),
                       self.written.failed)
        if planned.left:
            print("not asked this run: " + ", ".join(f"{n} {why}" for why, n in planned.left.most_common()))
        if not planned.requests:
            print("nothing to ask")
            return
        reserved = sum(r.usd for r in planned.reservations.values())
        print(f"asking {planned.events} events in {len(planned.requests)} batch requests "
              f"(at most ${reserved:.4f} at the batch price)", flush=True)
        if dry_run:
            return
        if self.interrupted.is_set():
            self.console.print("interrupted before anything was asked")
            raise typer.Exit(130)
        status = self.client.create(planned.requests)  # Ctrl-C waits: the batch is remembered first
        batch = remembered(self.settings, planned, status, self.client.model)
        self.state.save([*self.state.load(), batch])
        self.console.print(f"created batch {batch.batch_id}, remembered in {self.state.path}")
        self.finish(batch, planned)


def _report_found(found: Found) -> None:
    print(f"in range: {found.in_range} events to enrich, {found.answered} already answered in the response "
          f"log, {found.events} without an answer", flush=True)
    if found.fallbacks:
        print(f"{found.fallbacks} of them had a fallback published live: a replay or worker serves their answers "
              "only with TICKTIDE_ENRICH_REFRESH_FALLBACKS=true", flush=True)
    if found.skipped:
        print(f"skipped {sum(found.skipped.values())} records that cannot be used (a worker dead-letters "
              "them): " + ", ".join(f"{n} x {why}" for why, n in found.skipped.most_common()), flush=True)
        for where in found.where:
            print(f"    {printable(where)}", flush=True)


def _report_tokens(run: Run, prefix_tokens: int) -> None:
    if not run.written.answers:
        return
    tokens, answers = run.written.tokens, run.written.answers
    split = tokens.per_event(answers)
    minimum = min_cacheable_tokens(run.client.model)
    cached = "marked for the prompt cache" if run.client.cache_prefix else "too short to cache, not marked"
    print(f"input tokens per enriched event: {split['cache_read']:.1f} cache read, "
          f"{split['cache_write']:.1f} cache write, {split['uncached']:.1f} uncached; output "
          f"{tokens.output / answers:.1f} (usage of every result over {answers} answers written; fixed "
          f"prefix {prefix_tokens} tokens, {run.client.model} caches from {minimum}: {cached}); "
          f"${run.budget.limits.cost_usd(tokens.input_tokens, tokens.output):.4f} at the batch price",
          flush=True)


def backfill(settings: Settings, topics: list[str], start_us: int, end_us: int, poll_s: float,
             state: Path | None, dry_run: bool) -> None:
    """Pick up the remembered batches, then ask what the range still lacks."""
    live = client_from(settings)
    if live is None:
        raise ConfigError("no API key: set TICKTIDE_ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY)")
    console = Console(stderr=True, highlight=False)
    interrupted = threading.Event()  # Ctrl-C sets it: polling stops; nothing is created after it; a create completes
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        with console.status("calibrating the token estimate (count_tokens)"):
            chars_per_token = asyncio.run(live.calibrate())  # as a starting worker does: same contexts
    except BaseException:
        signal.signal(signal.SIGINT, previous)
        raise
    client = batch_client_from(settings, live.cache_prefix)
    assert client is not None
    run = Run(settings, client, StateFile(state) if state else StateFile.of(settings), poll_s, console, interrupted)
    try:
        for batch in [b for b in run.state.load() if b.topic_prefix == settings.topic_prefix]:
            console.print(f"picking up batch {plain(batch.batch_id)} ({len(batch.requests)} requests, "
                          f"created {plain(batch.created_at)})")
            run.finish(batch)
        run.ask(topics, start_us, end_us, chars_per_token, dry_run)
    finally:
        signal.signal(signal.SIGINT, previous)
        _report_tokens(run, live.prefix_tokens)
