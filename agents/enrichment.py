"""analysis.anomalies, analysis.indicators, market.news -> Claude (batched, cached,
budgeted, breaker, fallback) -> analysis.enrichments.

Every anomaly and headline, and the periodic snapshot of each symbol
(``enrich_snapshot_every_s``), of the enabled kinds yields exactly one Enrichment (source claude, cache
or fallback), with causation id = the event's id and an id derived from it, so a
re-delivered event re-emits the same Enrichment. Indicator snapshots are also kept as
context. A batch waits at most ``enrich_deadline_s`` for Claude; then it falls back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust import StreamT
from faust.types import EventT

from domain.enrich.breaker import CircuitBreaker
from domain.enrich.budget import Budget
from domain.enrich.context import Context, Subject, build_context, snapshot_subject
from domain.enrich.outcome import Outcome, enrichment_record
from schemas.records import Enrichment, EnrichmentSource, Event, utc_now
from streams.claude.enricher import Enricher, client_from, limits_from
from streams.claude.metrics import EnrichmentMetrics
from streams.faust.context import WorkerApp
from streams.faust.patches.private_api import partition_scope
from streams.kafka.json_form import event_to_json
from tables import enrichment as glue
from tables.enrichment import PRODUCER, EnrichmentInputs
from tables.response_log import LoggedCache

log = logging.getLogger(__name__)
AGENT = "enrichment"
ASSESS_AGENT = "enrichment.assess"


def make_enricher(app: WorkerApp, cache: LoggedCache) -> Enricher:
    """The worker's one Enricher, from the settings."""
    settings = app.settings
    client = client_from(settings)
    return Enricher(
        client=client, budget=Budget(limits_from(settings)),
        breaker=CircuitBreaker(settings.enrich_breaker_failures, settings.enrich_breaker_cooldown_s),
        cache=cache.cache, metrics=EnrichmentMetrics(app.metrics.registry),
        batch_max=settings.enrich_batch_max, max_output_tokens=settings.enrich_max_output_tokens,
        persist=cache.persist, refresh_fallbacks=settings.enrich_refresh_fallbacks)


def install(app: WorkerApp) -> None:
    """Register the enrichment agent and GET /assess/{symbol}."""
    settings = app.settings
    cache = LoggedCache.on_disk(app)
    enricher = make_enricher(app, cache)
    inputs = EnrichmentInputs(settings)
    out = app.typed_topics["analysis.enrichments"]
    table = glue.declare(app)
    channel = app.topic(*(app.typed_topics[name].name for name in inputs.types), key_type=bytes,
                        value_type=bytes, key_serializer="raw", value_serializer="raw",
                        partitions=settings.partitions)
    prefix = settings.topic_prefix

    def subject(message: Any) -> Subject | None:
        """The subject of a record, or None for a snapshot kept only as context."""
        return inputs.subject(message.topic.removeprefix(prefix), app.decode_valid(message.value, Event))

    async def enrich_batch(batch: list[EventT[Any]]) -> None:
        """Decode, enrich and send a batch; a record that fails is dead-lettered alone."""
        items: list[tuple[Any, Subject]] = []
        for event in batch:
            async with app.deadletters.guard(event.message, agent=AGENT):
                found = subject(event.message)
                if found is not None:
                    items.append((event.message, found))
        contexts = [inputs.context(s, enricher.chars_per_token) for _, s in items]
        outcomes = await safe_enrich(contexts)
        try:  # logged before it is published: a replay finds every outcome live published
            await cache.log_published([(c.subject.event_id, o) for c, o in zip(contexts, outcomes, strict=True)])
        except Exception as error:  # the enrichments still go out; only a replay would ask again
            log.error("enrichment: could not log %d published outcomes: %s", len(outcomes), error)
        now = utc_now()
        pending = []
        sent: dict[tuple[str, int], list[Enrichment]] = {}  # input (topic, partition) -> enrichments
        for (message, _), context, outcome in zip(items, contexts, outcomes, strict=True):
            async with app.deadletters.guard(message, agent=AGENT):
                record = enrichment_record(context.subject, outcome, PRODUCER, now)
                pending.append(await out.send_pending(record))
                sent.setdefault((message.topic, message.partition), []).append(record)
        await asyncio.gather(*pending)
        for (topic, partition), records in sent.items():
            with partition_scope(topic, partition):  # a batch has no current event
                glue.remember_enrichments(table, partition, records)
        app.count_processed(AGENT, len(batch))

    async def safe_enrich(contexts: list[Context]) -> list[Outcome]:
        try:
            return await enricher.enrich(contexts, settings.enrich_deadline_s)
        except Exception:  # a bug must not lose events: they get the fallback
            log.exception("enrichment failed; falling back for %d events", len(contexts))
            return [Outcome(enricher.fallback(c, "internal_error"), EnrichmentSource.FALLBACK,
                            reason="internal_error") for c in contexts]

    @app.agent(channel, name=AGENT)
    async def enrich(stream: StreamT[bytes]) -> None:
        if enricher.client is not None:
            enricher.chars_per_token = await enricher.client.calibrate()
        await cache.load()
        batches = stream.take_events(  # type: ignore[attr-defined]  # in faust, not its stubs
            settings.enrich_batch_max * 2, within=settings.enrich_batch_wait_s)
        async for batch in batches:
            await enrich_batch(batch)

    @app.agent(name=ASSESS_AGENT)
    async def assess(requests: StreamT[str]) -> Any:
        async for symbol in requests:
            yield await assess_symbol(symbol)

    async def assess_symbol(symbol: str) -> dict[str, Any]:
        recent = inputs.history.of(symbol)
        if not recent:
            return {"status": 404, "body": {"error": f"no indicators yet for {symbol!r}"}}
        subject = snapshot_subject(symbol, recent[-1])
        context = build_context(subject, recent[:-1], settings.enrich_context_tokens,
                                enricher.chars_per_token)
        outcome = (await safe_enrich([context]))[0]
        return {"status": 200, "body": event_to_json(enrichment_record(subject, outcome, PRODUCER, utc_now()))}

