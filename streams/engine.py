"""What differs between the two broker engines ticktide runs on, decided here once.

``tansu`` is the embedded broker (in memory, one node); ``kafka`` is Apache Kafka (the
production engine, also started locally by ``ticktide broker --engine kafka``). Everything
else asks ``engine_traits(flavor)`` instead of testing the flavor itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streams.errors import ConfigError

Flavor = Literal["kafka", "tansu"]


@dataclass(frozen=True)
class EngineTraits:
    """How ticktide talks to one broker engine."""

    name: Flavor
    fetch_max_wait_ms: int
    """A consumer's longest fetch wait (the hot path's trade reader, the command-line readers)."""
    agent_fetch_max_wait_ms: int
    """The longest fetch wait of Faust's consumer (every agent but the candle fold's reader).
    On Tansu each answered fetch costs CPU on both sides: at 10 ms an idle worker took 25 % of
    a core and its broker 41 %; at 100 ms, 11 % and 18 %, for at most 0.1 s more per hop."""
    fetch_answers_early: bool
    """A waiting fetch is answered when records arrive (Kafka), not only when the wait is over
    (Tansu: p50 128 ms from produce to fetch at 500 ms, 4.8 ms at 10): else waits are short."""
    list_offsets_is_end: bool
    """ListOffsets "latest" is the true end (Tansu: the base offset of the last batch)."""
    offsets_for_times: bool
    """ListOffsets by timestamp can be trusted (else: binary search over record timestamps)."""
    recovery_consistency_check: bool
    """Faust's check that a persisted offset is not past the changelog's end (Tansu's wrong
    "latest" makes it fail a restarted worker)."""
    compaction: bool
    """cleanup.policy=compact is honoured."""
    transactions: bool
    """Transactional producers work (Faust's ``exactly_once``; Tansu: InitProducerId fails)."""


KAFKA = EngineTraits("kafka", fetch_max_wait_ms=500, agent_fetch_max_wait_ms=500, fetch_answers_early=True,
                     list_offsets_is_end=True, offsets_for_times=True, recovery_consistency_check=True,
                     compaction=True, transactions=True)
TANSU = EngineTraits("tansu", fetch_max_wait_ms=10, agent_fetch_max_wait_ms=100, fetch_answers_early=False,
                     list_offsets_is_end=False, offsets_for_times=False, recovery_consistency_check=False,
                     compaction=False, transactions=False)


def engine_traits(flavor: str) -> EngineTraits:
    """The traits of a resolved flavor: ``tansu`` or anything else (Apache Kafka and the
    brokers that behave like it)."""
    return TANSU if flavor == "tansu" else KAFKA


def refuse_unsupported_guarantee(processing_guarantee: str, engine: EngineTraits) -> None:
    """ConfigError (one line naming the setting) for ``exactly_once``: Faust's transactional
    producers cannot start without broker transactions (Tansu), and on Apache Kafka they did not
    hold up under ticktide's broker-failure tests (README, "Delivery on Kafka, measured")."""
    if processing_guarantee != "exactly_once":
        return
    setting = "invalid setting processing_guarantee (TICKTIDE_PROCESSING_GUARANTEE): exactly_once"
    if not engine.transactions:
        raise ConfigError(f"{setting} needs broker transactions, which the embedded broker (Tansu) does not "
                          "have: use at_least_once (ticktide's tables skip re-delivered records)")
    raise ConfigError(f"{setting} is not offered: on Apache Kafka Faust sent trading.events and trading.signals "
                      "outside any transaction and aborted every heartbeat (README: Delivery on Kafka, measured); "
                      "use at_least_once (ticktide's tables skip re-delivered records)")
