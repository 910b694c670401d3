"""Schema registries: stable embedded ids; the Confluent backend over real HTTP (a fake server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
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
    data = AvroCodec(EmbeddedRegistry()).encode(make_trade())  # an id this server never gave
    with pytest.raises(UnknownSchemaId):
        AvroCodec(registry).decode(data)


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
