"""Enrichment cost and resilience against the fake Messages API (real ``anthropic`` client).

    python -m bench.enrichment [--events 1000] [--fault-events 10000] [--seed 7]

1. A repeated synthetic run: the same ``--events`` events (indicator snapshots, anomalies,
   news; some market pictures repeat, as quiet markets do) enriched twice, with and without
   batching (8 vs 1 event per call) and the cache. Prints calls per 1000 events and tokens
   per enriched event. Tokens are the fake's usage figures (request/response bytes / 4),
   so compare the rows with each other, not with a real bill.
2. A ``--fault-events`` run through a fault mix with an outage in the middle: prints events
   in and out (lost must be 0), sources, fallbacks by reason, cache hit ratio and the
   breaker's transitions.

Runs the service (cache, budget, breaker, batching, client) without Kafka; the worker
tests and bench.enrichment_worker cover the topics. Takes about 2.5 minutes on the dev box.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from prometheus_client import CollectorRegistry

from domain.enrich.breaker import CircuitBreaker
from domain.enrich.budget import Budget, Limits
from domain.enrich.cache import ResponseCache
from domain.enrich.context import Context, build_context, subject_of
from domain.enrich.outcome import Outcome
from schemas.records import Anomaly, EnrichmentSource, Event, IndicatorSnapshot, News
from streams.claude.client import ClaudeClient
from streams.claude.enricher import Enricher
from streams.claude.metrics import EnrichmentMetrics
from tests.fakes.anthropic_server import FakeAnthropic

UNLIMITED = Limits(0, 0, 0, 0, 0.0)
T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
TAKE = 16  # events per agent batch (2 x batch_max), as the agent takes them
ARRIVAL_S = 0.01  # fault run: a batch of 16 arrives every 10 ms (1,600 events/s)


def synthetic_events(count: int, seed: int) -> list[Event]:
    """Snapshots, anomalies and headlines whose figures come from small sets, so market
    pictures repeat now and then."""
    rng = random.Random(seed)
    events: list[Event] = []
    for n in range(count):
        symbol, when = rng.choice(SYMBOLS), T0 + timedelta(seconds=n)
        kind = rng.random()
        if kind < 0.6:
            close = 100.0 + rng.randint(0, 5)
            events.append(IndicatorSnapshot(
                envelope=IndicatorSnapshot.envelope_for(event_time=when, producer="bench"),
                symbol=symbol, interval="1m", candle_id=f"c{n}", candle_end=when,
                close=Decimal(str(close)), ema_fast=close + rng.choice((-1, 0, 1)),
                ema_slow=close, rsi=float(rng.choice((30, 50, 70))), atr=float(rng.choice((0.5, 1, 3))),
                realised_volatility=0.01, volume_zscore=float(rng.choice((0, 1, 2)))))
        elif kind < 0.85:
            events.append(Anomaly(
                envelope=Anomaly.envelope_for(event_time=when, producer="bench"), symbol=symbol,
                interval="1m", rule=rng.choice(("volume_zscore", "return_sigma", "gap")),
                value=float(rng.randint(3, 12)), threshold=3.0, candle_id=f"c{n}", description="spike"))
        else:
            events.append(News(
                envelope=News.envelope_for(event_time=when, producer="bench"),
                headline=f"{symbol[:-4]} headline number {rng.randint(0, 150)}", source="wire",
                symbols=[symbol], published_time=when))
    return events


def make_enricher(url: str, *, batch_max: int, cache: bool, timeout_s: float = 2.0,
                  breaker: CircuitBreaker | None = None) -> Enricher:
    client = ClaudeClient(api_key="bench", model="claude-haiku-4-5", base_url=url, timeout_s=timeout_s,
                          max_retries=2, retry_after_cap_s=0.2)
    return Enricher(client=client, budget=Budget(UNLIMITED),
                    breaker=breaker or CircuitBreaker(5, 0.5),
                    cache=ResponseCache(ttl_s=3600 if cache else 1e-9),
                    metrics=EnrichmentMetrics(CollectorRegistry()), batch_max=batch_max, concurrency=2)


async def enrich_all(enricher: Enricher, contexts: list[Context], deadline_s: float = 10.0,
                     arrival_s: float = 0.0) -> list[Outcome]:
    """Enrich in agent-sized batches; ``arrival_s`` between batches stands for events
    arriving over time (the breaker's cool-down is wall-clock time)."""
    outcomes: list[Outcome] = []
    for start in range(0, len(contexts), TAKE):
        outcomes += await enricher.enrich(contexts[start:start + TAKE], deadline_s)
        await asyncio.sleep(arrival_s)
    return outcomes


def cost_table(events: int, seed: int) -> None:
    contexts = [build_context(subject_of(e), [], 600) for e in synthetic_events(events, seed)]
    print(f"repeated synthetic run: {events} events, enriched twice (2 x {events})")
    print(f"{'batching':>10} {'cache':>6} {'calls/1000 ev':>14} {'tokens/event':>13} "
          f"{'in/event':>9} {'out/event':>10} {'cache hits':>11} {'seconds':>8}")
    for batch_max in (1, 8):
        for cache in (False, True):
            with FakeAnthropic() as fake:
                enricher = make_enricher(fake.url, batch_max=batch_max, cache=cache)
                started = time.perf_counter()
                outcomes = asyncio.run(_twice(enricher, contexts))
                seconds = time.perf_counter() - started
                tokens_in = sum(o.input_tokens for o in outcomes)
                tokens_out = sum(o.output_tokens for o in outcomes)
                total = len(outcomes)
                hits = sum(o.source is EnrichmentSource.CACHE for o in outcomes)
                print(f"{batch_max:>10} {'on' if cache else 'off':>6} {fake.calls * 1000 / total:>14.1f} "
                      f"{(tokens_in + tokens_out) / total:>13.1f} {tokens_in / total:>9.1f} "
                      f"{tokens_out / total:>10.1f} {hits / total:>11.1%} {seconds:>8.1f}")


async def _twice(enricher: Enricher, contexts: list[Context]) -> list[Outcome]:
    return await enrich_all(enricher, contexts) + await enrich_all(enricher, contexts)


def fault_run(events: int, seed: int) -> None:
    contexts = [build_context(subject_of(e), [], 600) for e in synthetic_events(events, seed)]
    with FakeAnthropic() as fake:
        fake.mix({"normal": 0.6, "rate_limited": 0.08, "overloaded": 0.08, "server_error": 0.05,
                  "malformed": 0.04, "refusal": 0.03, "invalid": 0.04, "max_tokens": 0.03,
                  "slow": 0.05}, seed=seed)
        fake.state.slow_s, fake.state.retry_after = 0.8, "0.05"
        breaker = CircuitBreaker(5, 0.5)
        enricher = make_enricher(fake.url, batch_max=8, cache=True, timeout_s=0.5, breaker=breaker)
        started = time.perf_counter()
        outcomes = asyncio.run(_with_outage(enricher, contexts, fake))
        seconds = time.perf_counter() - started
    ids_in = [c.subject.event_id for c in contexts]
    sources = Counter(o.source.value for o in outcomes)
    reasons = Counter(o.reason for o in outcomes if o.reason)
    print(f"\nfault run: {len(ids_in)} events in, {len(outcomes)} enrichments out, "
          f"lost {len(ids_in) - len(outcomes)}, {seconds:.1f} s, {fake.calls} API calls "
          f"(faults drawn: {dict(fake.state.calls)})")
    print(f"  sources: {dict(sources)}; cache hit ratio {enricher.cache.hit_ratio:.1%}")
    print(f"  fallbacks by reason: {dict(reasons)}")
    changes = [f"{t.before.value}->{t.after.value}" for t in enricher.transitions]
    print(f"  breaker transitions ({len(changes)}): {dict(Counter(changes))}; final {breaker.state.value}")


async def _with_outage(enricher: Enricher, contexts: list[Context], fake: FakeAnthropic) -> list[Outcome]:
    third = len(contexts) // 3
    first = await enrich_all(enricher, contexts[:third], arrival_s=ARRIVAL_S)
    fake.script(*["server_error"] * 30)  # an outage: the breaker must open, then recover
    return first + await enrich_all(enricher, contexts[third:], arrival_s=ARRIVAL_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="cost table run size (0: skip)")
    parser.add_argument("--fault-events", type=int, default=10_000, help="fault run size (0: skip)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.events:
        cost_table(args.events, args.seed)
    if args.fault_events:
        fault_run(args.fault_events, args.seed)


if __name__ == "__main__":
    main()
