"""The response cache over its store: what a worker serves from the response log kept on
disk (RocksDB), not bounded by memory, surviving a restart, and as untrusted as the log:
a hostile record or a spoiled stored value is never served. Also where a restarted worker
resumes reading the log."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from domain.enrich.assessment import fallback_assessment, validate_item
from domain.enrich.cache import ANSWER, PUBLISHED, MemoryStore, ResponseCache, encode_outcome, subject_key
from domain.enrich.context import build_context, subject_of
from domain.enrich.outcome import Outcome
from schemas.records import EnrichmentSource, Regime
from streams.claude.store import RocksStore, TieredStore, disk_store
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry
from tables.enrichment import cache_record, published_record
from tables.response_log import Position, fingerprint, resume_offsets, stored_positions, take_raw
from tests.factories import T0, make_anomaly, make_trade

NOW = T0.timestamp()
OLD_BOUND = 100_000  # what a worker kept in memory before: the newest 100,000 outcomes
GOOD = validate_item({"id": "0", "regime": "trending", "sentiment": 0.4, "risk_flags": ["volume_spike"],
                      "confidence": 0.8, "rationale": "Higher highs on rising volume."})[1]
CLAUDE = Outcome(GOOD, EnrichmentSource.CLAUDE, model="claude-haiku-4-5", input_tokens=120, output_tokens=40)


def _fallback(reason: str = "deadline") -> Outcome:
    context = build_context(subject_of(make_anomaly()), [], 500)
    return Outcome(fallback_assessment(context.subject.facts, [], reason), EnrichmentSource.FALLBACK, reason=reason)


def _said(n: int) -> Outcome:
    """Claude's answer number n (its rationale tells them apart)."""
    return replace(CLAUDE, assessment=replace(GOOD, rationale=f"Answer {n}."))


def test_a_subject_published_before_100_000_others_is_still_replayed_with_memory_for_a_few(tmp_path: Path) -> None:
    back = RocksStore(tmp_path / "log")
    store = TieredStore(MemoryStore(1_000), back)
    cache = ResponseCache(ttl_s=3600, store=store)
    cache.publish("subject-oldest", _fallback("breaker_open"), NOW)
    value = encode_outcome(_said(0), NOW)
    for n in range(OLD_BOUND - 1):  # as reading the log stores them (encoded once: this box is slow)
        store.put(f"{PUBLISHED}subject-{n}", value)
    cache.publish(f"subject-{OLD_BOUND - 1}", _said(OLD_BOUND - 1), NOW)
    oldest = cache.replayed("subject-oldest")
    assert oldest is not None and (oldest.source, oldest.reason) == (EnrichmentSource.FALLBACK, "breaker_open")
    newest = cache.replayed(f"subject-{OLD_BOUND - 1}")
    assert newest is not None and newest.source is EnrichmentSource.CACHE
    assert newest.assessment.rationale == f"Answer {OLD_BOUND - 1}." and newest.input_tokens == 0
    assert len(store.front) <= 1_000  # memory holds a few; the disk holds them all
    back.close()


def test_a_restarted_worker_reads_what_it_kept_from_disk(tmp_path: Path) -> None:
    key = "ab" * 32
    first = ResponseCache(ttl_s=3600, store=disk_store(tmp_path / "log", memory_entries=2))  # what a worker uses
    first.remember(key, "subject-a", CLAUDE, stored_at=NOW)
    first.publish("subject-b", _fallback(), NOW)
    first.store.back.close()  # type: ignore[attr-defined]  # the worker stops

    back = RocksStore(tmp_path / "log")
    again = ResponseCache(ttl_s=3600, store=TieredStore(MemoryStore(2), back))
    hit = again.get("another-key", "subject-a", NOW + 10)  # by its subject: the context came out different
    assert hit is not None and hit.assessment == GOOD and hit.source is EnrichmentSource.CACHE
    replayed = again.replayed("subject-b")
    assert replayed is not None and replayed.reason == "deadline"
    assert again.get(key, "subject-a", NOW + 3601) is None  # the TTL still holds for cache-key answers
    assert again.replayed("subject-b") is not None  # and never for what was published: that is history
    back.close()


def test_the_newest_record_for_a_key_wins_as_in_the_compacted_log() -> None:
    cache = ResponseCache(ttl_s=3600)
    for n in range(3):
        record = published_record("subject-x", _said(n), NOW + n)
        cache.take_logged(record.envelope.event_id, record, NOW + 10)
    found = cache.published("subject-x")
    assert found is not None and found.assessment.rationale == "Answer 2."
    key = "cd" * 32
    cache.remember(key, "subject-y", _said(5), stored_at=NOW + 5)
    cache.remember(key, "subject-y", _said(4), stored_at=NOW + 4)  # answered earlier, logged later
    hit = cache.get(key, "subject-y", NOW + 6)
    assert hit is not None and hit.assessment.rationale == "Answer 5."


@pytest.mark.parametrize("spoil", [
    lambda r: replace(r, sentiment=7.5),
    lambda r: replace(r, risk_flags=["buy_everything"]),
    lambda r: replace(r, rationale="Buy now. " * 500),
    lambda r: replace(r, subject_event_id="subject-other"),  # claims another subject than its key
    lambda r: replace(r, source=EnrichmentSource.FALLBACK, fallback_reason=None),
])
def test_a_hostile_record_after_a_good_one_leaves_its_subject_unanswered(spoil: object) -> None:
    codec = AvroCodec(EmbeddedRegistry())
    cache = ResponseCache(ttl_s=3600)
    good = published_record("subject-x", CLAUDE, NOW)
    key = good.envelope.event_id.encode()
    assert take_raw(cache, codec, key, codec.encode(good), NOW) is None
    assert cache.replayed("subject-x") is not None
    problem = take_raw(cache, codec, key, codec.encode(spoil(good)), NOW)  # type: ignore[operator]
    assert problem  # counted, with its reason
    assert cache.replayed("subject-x") is None and cache.published("subject-other") is None


def test_bytes_that_are_no_answer_are_ignored_and_a_tombstone_forgets() -> None:
    codec = AvroCodec(EmbeddedRegistry())
    cache = ResponseCache(ttl_s=3600)
    key = "ef" * 32
    answer = cache_record(key, "subject-z", CLAUDE, NOW)
    assert take_raw(cache, codec, key.encode(), codec.encode(answer), NOW) is None
    assert take_raw(cache, codec, b"\xff\xfe", codec.encode(answer), NOW) == "the record key is not text"
    assert take_raw(cache, codec, b"subject:q", codec.encode(make_trade()), NOW) == "a Trade, not an Enrichment"
    assert take_raw(cache, codec, b"subject:q", b"\x00\x00\x00\x00\x07garbage", NOW)
    assert cache.get(key, "subject-z", NOW) is not None
    assert take_raw(cache, codec, key.encode(), None, NOW) is None  # a tombstone
    assert cache.get(key, "someone-else", NOW) is None


@pytest.mark.parametrize("stored", [
    b"not json", b"[1, 2]", b"\xff" * 20,
    json.dumps({"regime": "to_the_moon"}).encode(),
])
def test_a_spoiled_value_on_disk_is_never_served(tmp_path: Path, stored: bytes) -> None:
    back = RocksStore(tmp_path / "log")
    cache = ResponseCache(ttl_s=3600, store=back)
    cache.publish("subject-a", CLAUDE, NOW)
    cache.remember("ab" * 32, "subject-b", CLAUDE, NOW)
    back.put(PUBLISHED + "subject-a", stored)  # a disk written by something else, or a bit flipped
    back.put(ANSWER + "ab" * 32, stored)
    assert cache.replayed("subject-a") is None and cache.get("ab" * 32, "subject-b", NOW) is None
    assert cache.unreadable >= 2
    back.close()


def test_values_on_disk_are_validated_like_logged_ones(tmp_path: Path) -> None:
    back = RocksStore(tmp_path / "log")
    cache = ResponseCache(ttl_s=3600, store=back)
    cache.publish("subject-a", CLAUDE, NOW)
    value = json.loads(back.get(PUBLISHED + "subject-a") or b"{}")
    for change in ({"sentiment": 3}, {"source": "ORACLE"}, {"reason": "deadline"}, {"input_tokens": -1},
                   {"stored_at": "yesterday"}, {"risk_flags": ["buy_everything"]}):
        back.put(PUBLISHED + "subject-a", json.dumps({**value, **change}).encode())
        assert cache.replayed("subject-a") is None, change
    back.put(PUBLISHED + "subject-a", json.dumps({**value, "regime": Regime.RANGING.value.lower()}).encode())
    served = cache.replayed("subject-a")
    assert served is not None and served.assessment.regime is Regime.RANGING
    back.close()


def test_a_memory_store_alone_forgets_the_oldest_past_its_bound() -> None:
    cache = ResponseCache(ttl_s=3600, store=MemoryStore(max_entries=3))
    for n in range(5):
        cache.publish(f"subject-{n}", _said(n), NOW)
    assert cache.replayed("subject-0") is None and cache.replayed("subject-4") is not None


def test_a_restart_resumes_at_the_last_record_read_and_a_log_it_does_not_know_is_read_again() -> None:
    positions = {0: Position(10, "f0"), 2: Position(3, "f2")}
    assert resume_offsets(positions, [10, 0, 7]) == [9, None, 2]  # partition 1: from its beginning
    assert resume_offsets({}, [4, 4]) == [None, None]
    assert resume_offsets(positions, [5, 0, 7]) is None  # read past its end: a log started afresh
    assert resume_offsets({3: Position(1, "x")}, [1, 1, 1]) is None  # a partition the log lacks
    assert fingerprint(b"k", b"v") != fingerprint(b"k", b"w") != fingerprint(None, b"w")
    assert fingerprint(b"kv", b"") != fingerprint(b"k", b"v")


def test_stored_positions_that_cannot_be_read_are_not_trusted() -> None:
    store = MemoryStore()
    store.put("o:0", json.dumps({"next": 4, "fingerprint": "ab"}).encode())
    assert stored_positions(store, 2) == {0: Position(4, "ab")}
    store.put("o:1", b"{\"next\": \"many\"}")
    assert stored_positions(store, 2) is None
    assert subject_key("x") == "subject:x"
