"""The response log (``analysis.enrichment_cache``) kept in a worker's store, and the
worker's handle on both (``LoggedCache``).

A worker keeps what the log says in its OutcomeStore (on disk: ``streams.claude.store``),
so the lookup is not bounded by memory. It reads the log before it enriches anything, up
to the end offsets seen when it starts (a busy topic cannot keep it reading), record by
record in log order (the newest for a key wins, as compaction keeps it), keeping only
what passes the validation of a live answer. How far it read each partition is stored
with the data (with a fingerprint of the last record read), so a restarted worker reads
only the records logged since; a store that is not of this log (a position past the
log's end, or another record at that position, e.g. a broker started afresh) is
cleared and the log read again from the beginning.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from domain.enrich.assessment import InvalidAnswer
from domain.enrich.cache import LOG_POSITION, OutcomeStore, ResponseCache
from domain.enrich.outcome import Outcome
from schemas.records import Enrichment, EnrichmentSource
from streams.claude.store import RocksStore, disk_store
from streams.errors import BrokerError, DecodeError
from streams.faust.context import WorkerApp
from streams.kafka.admin import end_offsets
from streams.kafka.codec import AvroCodec
from streams.kafka.ranges import from_beginning, read_range
from streams.settings import Settings
from tables.enrichment import CACHE_TOPIC, cache_record, published_record

log = logging.getLogger(__name__)
SAVE_EVERY = 5_000
"""Records read between two saves of the positions (a crash reads at most these again)."""
PREFETCH_KB = 4_096
"""What the log's reader fetches ahead per partition: memory stays flat however long the log."""


@dataclass(frozen=True)
class Position:
    """How far a partition of the log was read: the next offset, and the last record's fingerprint."""

    next: int
    fingerprint: str


def fingerprint(key: bytes | None, value: bytes | None) -> str:
    """What tells one record from another at the same offset."""
    digest = hashlib.sha256()
    for part in (key, value):
        digest.update(b"-" if part is None else len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:32]


def resume_offsets(positions: Mapping[int, Position], ends: Sequence[int]) -> list[int | None] | None:
    """Where to read each partition from: the last record read (checked against its
    fingerprint, then skipped), or None: from the beginning. None for all: the stored
    positions are not of this log (one past its end, or a partition it lacks)."""
    if any(p >= len(ends) or position.next > ends[p] for p, position in positions.items()):
        return None
    return [positions[p].next - 1 if p in positions and positions[p].next > 0 else None for p in range(len(ends))]


def stored_positions(store: OutcomeStore, partitions: int) -> dict[int, Position] | None:
    """The positions kept in the store (None if one cannot be read: then nothing is trusted)."""
    found: dict[int, Position] = {}
    for partition in range(partitions + 1):  # one more: a partition the log no longer has
        value = store.get(f"{LOG_POSITION}{partition}")
        if value is None:
            continue
        try:
            fields = json.loads(value)
            position = Position(int(fields["next"]), str(fields["fingerprint"]))
        except (ValueError, TypeError, KeyError):
            return None
        found[partition] = position
    return found


def save_positions(store: OutcomeStore, positions: Mapping[int, Position]) -> None:
    """Keep how far each partition was read."""
    for partition, position in positions.items():
        store.put(f"{LOG_POSITION}{partition}",
                  json.dumps({"next": position.next, "fingerprint": position.fingerprint}).encode())


@dataclass
class Synced:
    """What reading the log found: records read, why the ignored ones were, and whether
    it was read from its beginning (a new or cleared store) or from where it was left."""

    read: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    whole: bool = True


class LogChanged(Exception):
    """The record at a stored position is not the one read there before."""


def sync_log(settings: Settings, codec: AvroCodec, cache: ResponseCache, now: float) -> Synced:
    """Bring the cache's store up to the log's end offsets seen now (see the module)."""
    topic = settings.topic_prefix + CACHE_TOPIC
    ends = list(end_offsets(settings, topic))
    positions = stored_positions(cache.store, len(ends))
    starts = resume_offsets(positions, ends) if positions is not None else None
    if starts is not None and positions is not None:
        try:
            return _read(settings, codec, cache, now, topic, starts, ends, positions)
        except LogChanged:
            log.warning("response log %s: the stored copy is of another log; reading it again", topic)
    cache.store.clear()
    return _read(settings, codec, cache, now, topic, [None] * len(ends), ends, {})


def _read(settings: Settings, codec: AvroCodec, cache: ResponseCache, now: float, topic: str,
          starts: list[int | None], ends: list[int], positions: dict[int, Position]) -> Synced:
    synced, done = Synced(whole=all(start is None for start in starts)), dict(positions)
    checks = {p: positions[p] for p, start in enumerate(starts) if start is not None}
    beginning = from_beginning(1)[0]
    for raw in read_range(settings, topic, [beginning if s is None else s for s in starts], ends,
                          prefetch_kb=PREFETCH_KB):
        check = checks.pop(raw.partition, None)
        if check is not None and raw.offset == check.next - 1:
            if fingerprint(raw.key, raw.value) != check.fingerprint:
                raise LogChanged(topic)
            continue  # read before (a record gone from there was compacted away)
        problem = take_raw(cache, codec, raw.key, raw.value, now)
        if problem:
            synced.ignored[problem] += 1
        synced.read += 1
        done[raw.partition] = Position(raw.offset + 1, fingerprint(raw.key, raw.value))
        if synced.read % SAVE_EVERY == 0:
            save_positions(cache.store, done)
    save_positions(cache.store, done)
    return synced


def take_raw(cache: ResponseCache, codec: AvroCodec, key_bytes: bytes | None, value: bytes | None,
             now: float) -> str | None:
    """Keep one record of the log; why it was ignored, or None."""
    try:
        key = key_bytes.decode() if key_bytes is not None else ""
    except UnicodeDecodeError:
        return "the record key is not text"
    try:
        record = codec.decode(value) if value is not None else None
        if record is not None and not isinstance(record, Enrichment):
            raise InvalidAnswer(f"a {type(record).__name__}, not an Enrichment")
        cache.take_logged(key, record, now)
    except (DecodeError, InvalidAnswer) as problem:
        cache.forget(key)  # the log's newest record for the key says nothing believable
        return type(problem).__name__ if isinstance(problem, DecodeError) else str(problem)[:80]
    return None


def store_path(settings: Settings, reader: str = "worker") -> Path:
    """Where a reader of this instance's response log keeps its copy."""
    return Path(settings.data_dir) / "response-log" / f"{settings.topic_prefix}{CACHE_TOPIC}.{reader}"


@contextmanager
def logged_cache(settings: Settings, codec: AvroCodec, now: float, reader: str) -> Iterator[ResponseCache]:
    """The response log as a starting worker reads it, in ``reader``'s own store (closed after)."""
    back = RocksStore(store_path(settings, reader))
    try:
        cache = ResponseCache(settings.enrich_cache_ttl_s, store=back)
        sync_log(settings, codec, cache, now)
        yield cache
    finally:
        back.close()


class LoggedCache:
    """The response cache of a worker and its log topic."""

    def __init__(self, app: WorkerApp, cache: ResponseCache, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.cache = cache
        self.clock = clock
        self.ignored = 0
        self._loaded = False
        self._lock = asyncio.Lock()

    @classmethod
    def on_disk(cls, app: WorkerApp) -> LoggedCache:
        """The worker's: its store under ``TICKTIDE_DATA_DIR``, the newest few in memory."""
        settings = app.settings
        store = disk_store(store_path(settings), settings.enrich_cache_memory_entries)
        return cls(app, ResponseCache(settings.enrich_cache_ttl_s, store=store))

    async def load(self) -> int:
        """Read the log's records not read before (once per worker); how many were read."""
        async with self._lock:
            if self._loaded:
                return 0
            topic = self.app.settings.topic_prefix + CACHE_TOPIC
            try:
                synced = await asyncio.to_thread(sync_log, self.app.settings, self.app.codec, self.cache,
                                                 self.clock())
            except BrokerError as error:  # enrich anyway: what is not stored is asked again, on the budget
                log.error("enrichment cache: could not read %s (%s); serving what was stored before",
                          topic, error)
                synced = Synced()
            self._loaded = True
            self.ignored = sum(synced.ignored.values())
            log.info("enrichment cache: %d records read from %s%s", synced.read, topic,
                     " (all of it)" if synced.whole else " (logged since the last start)")
            if self.ignored:
                log.warning("enrichment cache: %d logged answers ignored as invalid (%s)", self.ignored,
                            "; ".join(f"{n} x {why}" for why, n in synced.ignored.most_common(5)))
            return synced.read

    async def persist(self, key: str, subject_id: str, outcome: Outcome, stored_at: float) -> None:
        """Log one answer, keyed by its cache key."""
        await self.app.typed_topics[CACHE_TOPIC].send(cache_record(key, subject_id, outcome, stored_at), key=key)

    async def log_published(self, published: list[tuple[str, Outcome]]) -> None:
        """Log the outcomes about to be published (subject id, outcome) and wait for the
        broker: a replay must find every one. A subject logged before is logged again
        only when a fallback was replaced (``enrich_refresh_fallbacks``)."""
        topic = self.app.typed_topics[CACHE_TOPIC]
        pending = []
        for subject_id, outcome in published:
            before = self.cache.published(subject_id)
            if before is not None and (before.source is not EnrichmentSource.FALLBACK
                                       or outcome.source is EnrichmentSource.FALLBACK):
                continue
            stored_at = self.clock()
            self.cache.publish(subject_id, outcome, stored_at)
            record = published_record(subject_id, outcome, stored_at)
            pending.append(await topic.send_pending(record, key=record.envelope.event_id))
        await asyncio.gather(*pending)
