"""The enrichment fault run through a real `ticktide worker` on its own embedded broker.

    python -m bench.enrichment_worker [--events 10000] [--seed 7]

Starts one worker against the fake Messages API (an outage first, then a mix of every
fault), produces ``--events`` synthetic snapshots, anomalies and headlines at 500/s, waits until
the agent has processed them all, then reads analysis.enrichments back: events in and
out, lost, duplicates, sources, fallbacks by reason, cache hit ratio and the breaker's
transitions as the worker logged them. Takes about three minutes on the dev box (10k).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from bench.enrichment import synthetic_events
from schemas.records import Enrichment, Event
from streams.devstack.broker import EmbeddedBroker
from streams.kafka.admin import create_topics
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import settings_for, start_worker

RATE = 500  # events per second
TOPICS = {"IndicatorSnapshot": "analysis.indicators", "Anomaly": "analysis.anomalies", "News": "market.news"}


def _metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for name, value in re.findall(r"^(ticktide_enrichment_\S+) (\S+)$", text, re.M):
        found[name] = float(value)
    return found


def _produce_paced(settings: Settings, inputs: list[Event]) -> None:
    """Send the events at RATE per second, as a live feed would."""
    with EventProducer(settings) as producer:
        for start in range(0, len(inputs), RATE // 4):
            for event in inputs[start:start + RATE // 4]:
                producer.send(TOPICS[type(event).__name__], event)
            producer.flush()
            time.sleep(0.25)


def run(events: int, seed: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-enrich-"))
    broker = EmbeddedBroker(log_file=tmp / "broker.log")
    broker.start()
    try:
        settings = settings_for(broker, tmp)
        create_topics(settings)
        inputs = synthetic_events(events, seed)
        with FakeAnthropic() as fake:
            fake.script(*["server_error"] * 30)
            fake.mix({"normal": 0.6, "rate_limited": 0.08, "overloaded": 0.08, "server_error": 0.05,
                      "malformed": 0.04, "refusal": 0.03, "invalid": 0.04, "max_tokens": 0.03,
                      "slow": 0.05}, seed=seed)
            fake.state.slow_s, fake.state.retry_after = 1.5, "0.05"
            started = time.monotonic()
            worker = start_worker(settings, tmp / "worker.log", **{
                "TICKTIDE_ANTHROPIC_API_KEY": "bench", "TICKTIDE_ANTHROPIC_BASE_URL": fake.url,
                "TICKTIDE_ANTHROPIC_TIMEOUT_S": "1", "TICKTIDE_ANTHROPIC_RETRY_AFTER_CAP_S": "0.2",
                "TICKTIDE_ENRICH_DEADLINE_S": "4", "TICKTIDE_ENRICH_REQUESTS_PER_MIN": "0",
                "TICKTIDE_ENRICH_INPUT_TOKENS_PER_MIN": "0", "TICKTIDE_ENRICH_OUTPUT_TOKENS_PER_MIN": "0",
                "TICKTIDE_ENRICH_DAILY_TOKENS": "0", "TICKTIDE_ENRICH_DAILY_USD": "0",
                "TICKTIDE_ENRICH_BREAKER_COOLDOWN_S": "1", "TICKTIDE_ENRICH_SNAPSHOT_EVERY_S": "0"})
            try:
                _produce_paced(settings, inputs)
                worker.wait_until(lambda h: h["agents"].get("enrichment", {}).get("processed", 0) >= events,
                                  timeout=900, what=f"{events} events enriched")
                seconds = time.monotonic() - started
                metrics = _metrics(worker.url)
            finally:
                worker.stop()
            calls = fake.calls
        out = [r.event for r in read_topic(settings, "analysis.enrichments", idle_timeout=3, until_end=True)
               if isinstance(r, Consumed) and isinstance(r.event, Enrichment)]
        ids_in = {e.envelope.event_id for e in inputs}
        ids_out = Counter(e.subject_event_id for e in out)
        print(f"worker fault run: {len(ids_in)} events in, {len(out)} enrichments out, "
              f"lost {len(ids_in - set(ids_out))}, duplicated {sum(n > 1 for n in ids_out.values())}, "
              f"{seconds:.1f} s from worker start (input paced at {RATE}/s), {calls} API calls")
        hits = metrics.get("ticktide_enrichment_cache_hits_total", 0)
        lookups = metrics.get("ticktide_enrichment_cache_lookups_total", 0)
        print(f"  sources: {dict(Counter(e.source.value for e in out))}; "
              f"cache hit ratio {hits / max(1.0, lookups):.1%}")
        fallbacks = {k.split('"')[1]: int(v) for k, v in metrics.items()
                     if k.startswith("ticktide_enrichment_fallbacks_total")}
        print(f"  fallbacks by reason: {fallbacks}")
        log = (tmp / "worker.log").read_text(errors="replace")
        changes = Counter(re.findall(r"circuit breaker (\w+ -> \w+)", log))
        print(f"  breaker transitions logged: {dict(changes)}")
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    run(args.events, args.seed)


if __name__ == "__main__":
    main()
