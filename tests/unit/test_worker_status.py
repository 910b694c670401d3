"""The worker's view of itself, with a fake runtime in place of Faust: readiness says why not."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from schemas.records import Lifecycle
from streams.ops.worker_status import WorkerStatus
from streams.settings import load_settings


@dataclass
class FakeRuntime:
    """RuntimeFacts with settable answers."""

    partitions: list[tuple[str, int]] = field(default_factory=lambda: [("market.trades", 0)])
    is_rebalancing: bool = False
    is_recovered: bool = True

    def input_topics(self, agent: str) -> set[str]:
        return {"market.trades"}

    def assigned(self) -> list[tuple[str, int]]:
        return self.partitions

    def lag(self, topics: set[str] | None = None) -> dict[str, int]:
        return {"market.trades[0]": 3}

    def recovered(self) -> bool:
        return self.is_recovered

    def rebalancing(self) -> bool:
        return self.is_rebalancing

    def recovering(self) -> bool:
        return not self.is_recovered

    def recovery_remaining(self) -> dict[str, int]:
        return {"active": 0, "standby": 0}

    def table_sizes(self) -> dict[str, int]:
        return {}


def status(runtime: FakeRuntime, dead: Counter[tuple[str, str]] | None = None) -> WorkerStatus:
    worker = WorkerStatus(load_settings(), CollectorRegistry(), runtime, dead if dead is not None else Counter())
    worker.lifecycle = Lifecycle.RUNNING
    return worker


def test_ready_only_when_running_assigned_recovered_and_not_rebalancing() -> None:
    runtime = FakeRuntime()
    worker = status(runtime)
    assert worker.ready() == (True, "ready")
    runtime.is_rebalancing = True
    assert worker.ready() == (False, "rebalancing")
    runtime.is_rebalancing, runtime.partitions = False, []
    assert worker.ready() == (False, "no partitions assigned")
    runtime.partitions, runtime.is_recovered = [("market.trades", 0)], False
    assert worker.ready() == (False, "tables recovering")
    worker.fail("trade_reader", RuntimeError("boom"))
    assert worker.ready() == (False, "trade_reader FAILED: RuntimeError: boom")


def test_errors_count_the_agents_own_and_its_dead_letters() -> None:
    dead: Counter[tuple[str, str]] = Counter({("market.trades", "invalid_value"): 2, ("other", "undecodable"): 5})
    worker = status(FakeRuntime(), dead)
    worker.error("market.trades")
    assert worker.errors_of("market.trades") == 3
    assert worker.lag() == {"market.trades[0]": 3}
