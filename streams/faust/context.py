"""``WorkerApp``: what agents, table glue and web views may use of the worker's app.

Modules below the composition root depend on this protocol, not on ``TickTideApp``: the
worker's services (settings, codec, metrics, topics, dead letters, retries, its status,
the trade reader) and the part of Faust's public API they call (agents, timers, tasks,
tables, pages, routing). ``rebalancing`` and ``in_recovery`` are Faust's own typed flags.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol, TypeVar

from faust.types import AgentManagerT, TopicT
from faust.types.assignor import PartitionAssignorT
from faust.types.router import RouterT
from faust.types.settings import Settings as FaustSettings
from faust.types.tables import TableManagerT
from faust.types.transports import ConsumerT

from schemas.records import Event
from streams.faust.typed_topic import TypedTopic
from streams.hotpath.analysis_driver import AnalysisDriver
from streams.hotpath.driver import CandleDriver
from streams.hotpath.reader import TradeReader
from streams.kafka.codec import AvroCodec
from streams.ops.metrics import LatencyWindow, Metrics
from streams.ops.worker_status import WorkerStatus
from streams.resilience.deadletter import DeadLetters
from streams.resilience.retry import Retries
from streams.settings import Settings

E = TypeVar("E", bound=Event)


class WorkerApp(Protocol):
    """The worker's app as agents, tables and views see it."""

    # ticktide's services (attached by streams/worker.py)
    settings: Settings
    codec: AvroCodec
    metrics: Metrics
    typed_topics: dict[str, TypedTopic]
    """Every catalog topic by catalog name (``.faust`` to consume, ``send`` to produce)."""
    trade_owners: TopicT
    """The internal topic whose partitions say which market.trades partitions a worker folds
    (streams/hotpath/reader.py)."""
    deadletters: DeadLetters
    retries: Retries
    worker_status: WorkerStatus
    trade_reader: TradeReader
    candle_driver: CandleDriver | None
    """The candle fold of the partitions this worker owns (set by agents/market.py)."""
    analysis_driver: AnalysisDriver | None
    """The analysis of the market.candles partitions this worker owns (set by agents/analysis.py)."""
    processed: Counter[str]
    pipeline_latency: LatencyWindow
    # Faust's state flags
    rebalancing: bool
    in_recovery: bool

    def decode_valid(self, data: bytes | None, expected: type[E]) -> E:
        """Decode a record of ``expected`` type and check its type's rules."""
        ...

    def count_processed(self, agent: str, n: int = 1) -> None:
        """Count events an agent has finished with (processed or dead-lettered)."""
        ...

    # Faust's public API, as faust.App types it
    @property
    def conf(self) -> FaustSettings: ...
    @property
    def tables(self) -> TableManagerT: ...
    @property
    def agents(self) -> AgentManagerT: ...
    @property
    def assignor(self) -> PartitionAssignorT: ...
    @property
    def router(self) -> RouterT: ...
    @property
    def on_before_shutdown(self) -> Any: ...
    @property
    def on_partitions_revoked(self) -> Any: ...
    @property
    def on_rebalance_complete(self) -> Any: ...
    @property
    def consumer(self) -> ConsumerT: ...
    def agent(self, *args: Any, **kwargs: Any) -> Any: ...
    def timer(self, *args: Any, **kwargs: Any) -> Any: ...
    def task(self, *args: Any, **kwargs: Any) -> Any: ...
    def topic(self, *args: Any, **kwargs: Any) -> Any: ...
    def Table(self, *args: Any, **kwargs: Any) -> Any: ...
    def page(self, *args: Any, **kwargs: Any) -> Any: ...
    def service(self, *args: Any, **kwargs: Any) -> Any: ...
