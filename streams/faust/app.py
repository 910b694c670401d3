"""ticktide's faust.App: Faust's settings derived from ours, and the app class that carries
the worker's services (built and attached by the composition root, streams/worker.py).
Agents and views see it through ``streams.faust.context.WorkerApp``."""

from __future__ import annotations

import functools
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
from faust.types import TopicT

from schemas.records import Event
from streams.faust.typed_topic import TypedTopic
from streams.hotpath.analysis_driver import AnalysisDriver
from streams.hotpath.driver import CandleDriver
from streams.hotpath.reader import TradeReader
from streams.kafka.catalog import letter_bytes
from streams.kafka.codec import AvroCodec
from streams.ops.metrics import LatencyWindow, Metrics
from streams.ops.worker_status import WorkerStatus
from streams.resilience.deadletter import DeadLetters
from streams.resilience.retry import Retries
from streams.settings import Settings
from streams.validation import checked

E = TypeVar("E", bound=Event)
log = logging.getLogger(__name__)


class TickTideApp(faust.App):
    """A Faust app that carries ticktide's services (see ``streams.faust.context.WorkerApp``)."""

    settings: Settings
    codec: AvroCodec
    metrics: Metrics
    typed_topics: dict[str, TypedTopic]
    trade_owners: TopicT
    deadletters: DeadLetters
    worker_status: WorkerStatus
    retries: Retries
    trade_reader: TradeReader
    candle_driver: CandleDriver | None = None
    analysis_driver: AnalysisDriver | None = None
    processed: Counter[str]
    pipeline_latency: LatencyWindow

    def decode_valid(self, data: bytes | None, expected: type[E]) -> E:
        """Decode a record of ``expected`` type (``Event``: any) and check its type's rules:
        DecodeError or InvalidValue (dead-lettered by the caller's guard) if it may not be used."""
        return checked(self.codec.decode_as(data, expected), self.settings.max_future_skew_s)

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """An exception escaped an agent (a bug: records are guarded one by one): the agent
        is FAILED and the worker not ready, so an operator sees it."""
        self.worker_status.fail(agent.name, exc)
        await super()._on_agent_error(agent, exc)

    def timer(self, interval: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """``faust.App.timer`` whose ticks are guarded: an exception costs that tick (logged
        and counted as an error of the timer), never the timer or the worker."""
        register = super().timer(interval, **kwargs)

        def decorate(fun: Callable[..., Awaitable[None]]) -> Any:
            name = kwargs.get("name") or fun.__name__

            @functools.wraps(fun)
            async def guarded(*args: Any) -> None:
                try:
                    await fun(*args)
                except Exception as error:
                    self.worker_status.error(name)
                    log.exception("timer %s failed this time: %s", name, error)

            return register(guarded)

        return decorate

    def count_processed(self, agent: str, n: int = 1) -> None:
        """Count events an agent has finished with (processed or dead-lettered)."""
        self.processed[agent] += n
        self.metrics.events_processed.labels(agent).inc(n)
        self.worker_status.processed(agent, n)


def _credentials(settings: Settings) -> Any:
    context = settings.ssl_context()
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
            mechanism=settings.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context else None


def faust_config(settings: Settings) -> dict[str, Any]:
    """Faust settings derived from ours."""
    return {
        "broker": [f"kafka://{host}" for host in settings.broker.split(",")],
        "broker_credentials": _credentials(settings),
        "store": f"{settings.store}://",
        "datadir": str(settings.data_dir.resolve()),
        "web_host": settings.web_host,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "web_tables_enabled": False,
        "web_router_enabled": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        "consumer_auto_offset_reset": "earliest",
        "table_standby_replicas": settings.standby_replicas,
        # at_least_once (exactly_once is refused: streams.engine). It would cover Faust's agents
        # only: the candle fold's reader and producers are not Faust's.
        "processing_guarantee": settings.processing_guarantee,
        "producer_compression_type": "lz4",
        # Off only where ListOffsets "latest" is wrong (Tansu): see streams.engine.
        "recovery_consistency_check": settings.engine.recovery_consistency_check,
        "autodiscover": False,
        # ask()'s reply topic: named after the app, not a bare f-reply-<uuid> on a shared broker
        "reply_to_prefix": f"{settings.app_id}-reply-",
        "stream_buffer_maxsize": 32768,
        "Monitor": "streams.faust.monitor:LeanMonitor",
        "consumer_max_fetch_size": 8 * 1024 * 1024,
        # Dead letters carry the original record: the producer must take one that large.
        "producer_max_request_size": letter_bytes(settings.max_record_bytes) + 4096,
        **_canonical_url(settings),
    }


def _canonical_url(settings: Settings) -> dict[str, str]:
    """Where other workers reach this one's web views (routed table queries): the
    setting, else this host's name when binding every interface (containers)."""
    if settings.canonical_url:
        return {"canonical_url": settings.canonical_url}
    if settings.web_host == "0.0.0.0":
        return {"canonical_url": f"http://{socket.gethostname()}:{settings.web_port}"}
    return {}
