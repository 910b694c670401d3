"""The Apache Kafka engine's pure parts: what differs between engines (streams/engine.py),
the local cluster's layout and configuration (streams/devstack/kafka_config.py), the pinned
version."""

from __future__ import annotations

from pathlib import Path

from streams.devstack.kafka_config import (
    NodeSpec,
    jvm_options,
    new_cluster_id,
    node_ports,
    quorum_voters,
    replication,
    server_properties,
)
from streams.devstack.kafka_jars import kafka_version
from streams.engine import KAFKA, TANSU, engine_traits
from streams.faust.app import faust_config
from streams.settings import load_settings


def _nodes(count: int, first: int = 9092) -> list[NodeSpec]:
    return [NodeSpec(i + 1, "127.0.0.1", port, 19000 + i, Path(f"/d/node-{i + 1}"))
            for i, port in enumerate(node_ports(first, count))]


def test_node_i_listens_on_port_plus_i_minus_one_and_every_node_votes() -> None:
    nodes = _nodes(3)
    assert [n.address for n in nodes] == ["127.0.0.1:9092", "127.0.0.1:9093", "127.0.0.1:9094"]
    assert quorum_voters(nodes) == "1@127.0.0.1:19000,2@127.0.0.1:19001,3@127.0.0.1:19002"


def test_three_nodes_replicate_three_times_and_acks_all_needs_two_in_sync() -> None:
    assert replication(3)["default.replication.factor"] == "3"
    assert replication(3)["min.insync.replicas"] == "2"
    assert replication(3)["offsets.topic.replication.factor"] == "3"
    assert replication(1)["min.insync.replicas"] == "1", "one node must still take acks=all writes"
    assert replication(5)["default.replication.factor"] == "3"


def test_each_node_is_controller_and_broker_on_its_own_ports_and_data() -> None:
    nodes = _nodes(2)
    props = server_properties(nodes[1], nodes, {"log.cleaner.backoff.ms": "500"})
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "2"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:19001"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9093"
    assert props["log.dirs"] == "/d/node-2"
    assert props["log.cleaner.backoff.ms"] == "500", "a test's overrides win"


def test_the_jvm_is_small_and_the_cluster_id_is_kafkas_form() -> None:
    options = jvm_options()
    assert "-Xmx384m" in options and "-XX:+UseSerialGC" in options
    ids = [new_cluster_id() for _ in range(500)]
    assert all(len(c) == 22 and "=" not in c and not c.startswith("-") for c in ids)


def test_the_pinned_kafka_is_4_1_1_or_newer_and_never_4_1_0() -> None:
    version = tuple(int(part) for part in kafka_version().split("."))
    assert version >= (4, 1, 1)


def test_on_kafka_the_native_paths_are_used_and_tansu_keeps_its_workarounds() -> None:
    assert engine_traits("kafka") is KAFKA and engine_traits("auto") is KAFKA
    assert engine_traits("tansu") is TANSU
    assert KAFKA.list_offsets_is_end and KAFKA.offsets_for_times and KAFKA.recovery_consistency_check
    assert not (TANSU.list_offsets_is_end or TANSU.offsets_for_times or TANSU.recovery_consistency_check)
    on_kafka = load_settings(broker_flavor="kafka")
    on_tansu = load_settings(broker_flavor="tansu")
    assert faust_config(on_kafka)["recovery_consistency_check"] is True
    assert faust_config(on_tansu)["recovery_consistency_check"] is False
    assert on_tansu.fetch_max_wait_ms < on_kafka.fetch_max_wait_ms
