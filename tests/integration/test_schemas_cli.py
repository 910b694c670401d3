"""`ticktide schemas register|check` against a Schema Registry (the fake one in tests/fakes: real
HTTP, compatibility checked with the avro package's rules), and the switch from the embedded
registry to a real one with auto-registration off: what was written before stays readable."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal

from schemas.files import all_versions
from streams.kafka.producer import EventProducer
from streams.kafka.ranges import read_all
from streams.kafka.registry import embedded_schema_id
from streams.settings import Settings
from tests.factories import make_trade
from tests.fakes import FakeSchemaRegistry
from tests.harness import run_cli

VERSIONS = [v for history in all_versions().values() for v in history]


def _wire_ids(settings: Settings) -> list[int]:
    return [int.from_bytes(r.value[1:5], "big") for r in read_all(settings, "market.trades") if r.value is not None]


def test_switching_to_a_registry_with_auto_registration_off(stack_settings: Settings) -> None:
    before = [make_trade(trade_id=i, price=Decimal("100") + i) for i in range(5)]
    with EventProducer(stack_settings) as producer:  # the embedded registry: fingerprint ids
        for trade in before:
            producer.send("market.trades", trade)

    with FakeSchemaRegistry() as registry:
        production = {"TICKTIDE_SCHEMA_REGISTRY_URL": registry.url, "TICKTIDE_SCHEMA_REGISTRY_AUTO_REGISTER": "false"}
        refused = run_cli("command", "PauseStrategy", "strategy=ema_cross", settings=stack_settings, **production)
        assert refused.returncode == 1
        assert "auto-registration is off" in refused.stderr and "ticktide schemas register" in refused.stderr
        assert registry.schema_ids == []

        check = run_cli("schemas", "check", settings=stack_settings, **production)
        assert check.returncode == 0, check.stderr
        assert f"0 registered, {len(VERSIONS)} to register" in check.stdout

        first = run_cli("schemas", "register", settings=stack_settings, **production)
        assert first.returncode == 0, first.stderr
        lines = first.stdout.splitlines()
        registered = [line.split()[1:3] for line in lines if line.split()[0] == "registered"]
        assert registered == [[v.full_name, f"v{v.version}"] for name in sorted(all_versions())
                              for v in all_versions()[name]]  # every version, in order
        assert len(registry.schema_ids) == len(VERSIONS)
        again = run_cli("schemas", "register", settings=stack_settings, **production)
        assert again.returncode == 0 and f"0 new of {len(VERSIONS)} versions" in again.stdout
        check = run_cli("schemas", "check", settings=stack_settings, **production)
        assert check.returncode == 0 and f"{len(VERSIONS)} registered, 0 to register" in check.stdout

        after = [make_trade(trade_id=10 + i, price=Decimal("200") + i) for i in range(5)]
        with EventProducer(stack_settings.model_copy(update={
                "schema_registry_url": registry.url, "schema_registry_auto_register": False})) as producer:
            for trade in after:
                producer.send("market.trades", trade)
        consumed = run_cli("consume", "market.trades", "--timeout", "3", settings=stack_settings, **production)
        assert consumed.returncode == 0, consumed.stderr
        ids = sorted(json.loads(line)["trade_id"] for line in consumed.stdout.splitlines())
        assert ids == [t.trade_id for t in before + after]  # the old records too

        trade_versions = all_versions()["ticktide.market.Trade"]
        embedded = embedded_schema_id(trade_versions[-1].schema)
        wire = _wire_ids(stack_settings)
        assert wire.count(embedded) == len(before)
        assert len(set(wire) - {embedded}) == 1 and set(wire) - {embedded} <= set(registry.schema_ids)


def test_a_registry_holding_an_incompatible_schema_fails_check_and_register(stack_settings: Settings) -> None:
    with FakeSchemaRegistry() as registry:
        trade = json.loads(all_versions()["ticktide.market.Trade"][0].text)
        next(f for f in trade["fields"] if f["name"] == "trade_id")["type"] = "string"
        request = urllib.request.Request(
            f"{registry.url}/subjects/ticktide.market.Trade/versions", method="POST",
            data=json.dumps({"schema": json.dumps(trade)}).encode(),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
        urllib.request.urlopen(request, timeout=5).close()

        check = run_cli("schemas", "check", "--registry", registry.url, settings=stack_settings)
        assert check.returncode == 1
        refused = [line.split()[1:3] for line in check.stdout.splitlines() if line.split()[0] == "INCOMPATIBLE"]
        assert refused == [["ticktide.market.Trade", "v1"], ["ticktide.market.Trade", "v2"]]
        assert "would be refused" in check.stdout

        register = run_cli("schemas", "register", "--registry", registry.url, settings=stack_settings)
        assert register.returncode == 1
        assert register.stderr.strip().splitlines() == [
            f"ticktide: ticktide.market.Trade v1 is not BACKWARD-compatible with what {registry.url} holds: "
            "nothing registered from it on"]
