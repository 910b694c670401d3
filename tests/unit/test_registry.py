"""Schema registries: stable embedded ids; the Confluent backend over real HTTP (a fake server)."""

from __future__ import annotations

import copy
import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.files import SchemaVersion, all_versions, latest
from schemas.records import Event
from streams.errors import RegistryError, UnknownSchemaId
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import ConfluentRegistry, EmbeddedRegistry, embedded_schema_id
from tests.factories import make_trade, sample_events
from tests.fakes import FakeSchemaRegistry

REPO = Path(__file__).resolve().parents[2]
VERSIONS: list[SchemaVersion] = [v for history in all_versions().values() for v in history]
PATIENCE_S = 10.0  # the client's default retries sleep up to 7 s in total


def _ids_in_this_process() -> dict[str, list[int]]:
    return {
        name: [embedded_schema_id(v.schema) for v in history]
        for name, history in all_versions().items()
    }


# --- embedded -------------------------------------------------------------------------


def test_embedded_ids_are_the_same_in_another_process() -> None:
    script = (
        "import json; from schemas.files import all_versions; "
        "from streams.kafka.registry import embedded_schema_id; "
        "print(json.dumps({n: [embedded_schema_id(v.schema) for v in h] "
        "for n, h in all_versions().items()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
        check=True, timeout=60,
    )
    assert json.loads(out.stdout) == _ids_in_this_process()


def test_embedded_ids_are_distinct_positive_31_bit() -> None:
    ids = [embedded_schema_id(v.schema) for v in VERSIONS]
    assert len(VERSIONS) > len(all_versions())  # some schema has evolved (Trade v1, v2)
    assert len(set(ids)) == len(ids)
    assert all(0 < i < 2**31 for i in ids)  # a Java consumer reads a signed int


def test_embedded_lookup_returns_the_registered_schema() -> None:
    registry = EmbeddedRegistry()
    for version in VERSIONS:
        assert registry.lookup(registry.register(version)) == version.schema


def test_embedded_unknown_id() -> None:
    registry = EmbeddedRegistry()
    known = {embedded_schema_id(v.schema) for v in VERSIONS}
    unknown = next(i for i in range(1, 100) if i not in known)
    with pytest.raises(UnknownSchemaId, match=str(unknown)):
        registry.lookup(unknown)


# --- Confluent, against the fake server -----------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeSchemaRegistry]:
    with FakeSchemaRegistry() as fake:
        yield fake


def test_confluent_register_then_lookup_from_a_fresh_client(server: FakeSchemaRegistry) -> None:
    writer = ConfluentRegistry(server.url)
    ids = {v.path.name: writer.register(v) for v in VERSIONS}
    assert len(set(ids.values())) == len(VERSIONS)
    assert server.schema_ids == sorted(ids.values())

    reader = ConfluentRegistry(server.url)
    for version in VERSIONS:
        assert reader.lookup(ids[version.path.name]) == version.schema
        assert reader.register(version) == ids[version.path.name]  # same text, same id
    assert server.schema_ids == sorted(ids.values())  # nothing registered twice


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
def test_codec_on_confluent_round_trips(server: FakeSchemaRegistry, event: Event) -> None:
    codec = AvroCodec(ConfluentRegistry(server.url))
    data = codec.encode(event)
    assert codec.decode(data) == event
    server_id = ConfluentRegistry(server.url).register(latest(type(event).AVRO_NAME))
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == server_id


def test_record_decodes_in_another_codec_on_the_same_registry(server: FakeSchemaRegistry) -> None:
    producer = AvroCodec(ConfluentRegistry(server.url))
    consumer = AvroCodec(ConfluentRegistry(server.url))
    events = sample_events()
    records = [producer.encode(e) for e in events]
    assert [consumer.decode(r) for r in records] == events
    assert ("GET", f"/schemas/ids/{producer.schema_id(type(events[0]))}") in server.requests


def test_confluent_unknown_id(server: FakeSchemaRegistry) -> None:
    registry = ConfluentRegistry(server.url)
    with pytest.raises(UnknownSchemaId, match="schema id 42 "):
        registry.lookup(42)
    known = {embedded_schema_id(v.schema) for v in VERSIONS}
    neither = next(i for i in range(10**6, 10**6 + 100) if i not in known)
    with pytest.raises(UnknownSchemaId, match=rf"schema id {neither} is not in .*nor a ticktide schema"):
        AvroCodec(registry).decode(b"\x00" + neither.to_bytes(4, "big") + b"\x00")


# --- the switch from the embedded registry to a real one ------------------------------


def test_embedded_ids_cannot_be_taken_for_a_registrys_own() -> None:
    """A registry numbers its schemas 1, 2, 3...: a reader that falls back to the fingerprint
    ids only for ids the registry does not know must never meet one that it does."""
    assert min(embedded_schema_id(v.schema) for v in VERSIONS) > 1_000_000


def test_records_written_with_embedded_ids_decode_on_a_registry_after_the_switch(
        server: FakeSchemaRegistry) -> None:
    events = sample_events()
    before = [AvroCodec(EmbeddedRegistry()).encode(e) for e in events]
    registry = ConfluentRegistry(server.url)
    for version in VERSIONS:
        registry.register_version(version)
    assert set(server.schema_ids).isdisjoint(int.from_bytes(r[1:5], "big") for r in before)

    reader = AvroCodec(ConfluentRegistry(server.url, auto_register=False))
    assert [reader.decode(r) for r in before] == events
    after = [reader.encode(e) for e in events]  # new records carry the registry's ids
    assert [int.from_bytes(r[1:5], "big") for r in after] == [
        registry.register(latest(type(e).AVRO_NAME)) for e in events]


def test_keep_embedded_ids_imports_every_version_under_its_fingerprint(server: FakeSchemaRegistry) -> None:
    """Then any registry client resolves the old records' ids, and writers keep writing them."""
    registry = ConfluentRegistry(server.url)
    states = [registry.register_version(v, keep_embedded_id=True) for v in VERSIONS]
    assert [s.schema_id for s in states] == [embedded_schema_id(v.schema) for v in VERSIONS]
    assert [s.registry_version for s in states] == [v.version for v in VERSIONS]
    for version in VERSIONS:  # what kcat or Kafka UI would ask
        status, body = _get(f"{server.url}/schemas/ids/{embedded_schema_id(version.schema)}")
        assert status == 200 and json.loads(body["schema"]) == version.schema
    events = sample_events()
    writer = AvroCodec(ConfluentRegistry(server.url, auto_register=False))
    assert [writer.encode(e)[:5] for e in events] == [AvroCodec(EmbeddedRegistry()).encode(e)[:5] for e in events]
    again = [registry.register_version(v, keep_embedded_id=True) for v in VERSIONS]
    assert not any(s.created for s in again)  # idempotent


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


# --- auto-registration off, and the registry's own compatibility check ----------------


def test_with_auto_registration_off_a_writer_only_looks_its_schema_up(server: FakeSchemaRegistry) -> None:
    writer = AvroCodec(ConfluentRegistry(server.url, auto_register=False))
    with pytest.raises(RegistryError, match=r"auto-registration is off.*ticktide schemas register"):
        writer.encode(make_trade())
    assert server.schema_ids == []  # nothing registered behind the operator's back
    trade = latest("ticktide.market.Trade")
    ConfluentRegistry(server.url).register_version(trade)
    registered = len(server.requests)
    trade_event = make_trade()
    looked_up = AvroCodec(ConfluentRegistry(server.url, auto_register=False))
    assert looked_up.decode(looked_up.encode(trade_event)) == trade_event
    assert ("POST", "/subjects/ticktide.market.Trade") in server.requests[registered:]  # a lookup
    assert not [path for method, path in server.requests[registered:] if path.endswith("/versions")]


def _retyped(version: SchemaVersion, field: str, kind: str) -> SchemaVersion:
    schema = copy.deepcopy(version.schema)
    next(f for f in schema["fields"] if f["name"] == field)["type"] = kind
    return dataclasses.replace(version, schema=schema)


def test_the_registry_check_is_real_and_refuses_an_incompatible_version(server: FakeSchemaRegistry) -> None:
    v1, v2 = all_versions()["ticktide.market.Trade"]
    registry = ConfluentRegistry(server.url)
    assert registry.state_of(v1).state == "new subject"
    assert registry.register_version(v1).created
    assert registry.state_of(v2).state == "compatible"  # v2's new fields have defaults
    broken = _retyped(v2, "trade_id", "string")
    found = registry.state_of(broken)
    assert (found.state, found.level) == ("INCOMPATIBLE", "BACKWARD")
    with pytest.raises(RegistryError, match="Trade v2 is not BACKWARD-compatible"):
        registry.register_version(broken)
    with pytest.raises(RegistryError, match="incompatible"):  # the server refuses it too (409)
        registry.register(broken)
    assert registry.register_version(v2).registry_version == 2
    required = copy.deepcopy(v2.schema)
    required["fields"].append({"name": "fee", "type": "double"})  # no default: v2 data lacks it
    assert registry.state_of(dataclasses.replace(v2, schema=required)).state == "INCOMPATIBLE"


def _outcomes(calls: list[Callable[[], object]], limit_s: float) -> list[BaseException | None]:
    """Run calls concurrently; what each raised. Fails the test if one outlives limit_s."""
    results: list[BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            calls[index]()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    deadline = time.monotonic() + limit_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = [i for i, thread in enumerate(threads) if thread.is_alive()]
    assert not hung, f"calls {hung} still waiting on the registry after {limit_s} s"
    return results


def test_stopped_registry_is_a_registry_error_not_a_hang(server: FakeSchemaRegistry) -> None:
    trade = latest("ticktide.market.Trade")
    live = ConfluentRegistry(server.url)
    trade_id = live.register(trade)
    server.stop()
    other = latest("ticktide.analysis.Candle")
    record = b"\x00" + trade_id.to_bytes(4, "big") + b"\x00"

    outcomes = _outcomes([
        lambda: ConfluentRegistry(server.url).lookup(trade_id),
        lambda: live.register(other),
        lambda: AvroCodec(ConfluentRegistry(server.url)).decode(record),
    ], PATIENCE_S)

    for outcome in outcomes:
        assert isinstance(outcome, RegistryError), repr(outcome)
        assert server.url in str(outcome)
    assert live.register(trade) == trade_id  # what was learnt before the outage still works


def test_silent_registry_is_a_registry_error_not_a_hang() -> None:
    """A registry that accepts connections but never answers (hung, or a black hole)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes handshakes; nobody ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        registry = ConfluentRegistry(url)
        [outcome] = _outcomes([lambda: registry.lookup(1)], PATIENCE_S)
    assert isinstance(outcome, RegistryError), repr(outcome)
