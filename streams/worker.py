"""The composition root: the one place that builds a worker, in this order.

settings -> the Faust app -> its services (codec, metrics, topics, dead letters, status,
retries, the trade reader) -> tables (tables/names.py lists them) -> agents (built in,
then the user's ``extra_agents``) -> web views -> the version-guarded Faust patches.

Everything below depends on ``streams.faust.context.WorkerApp``, never on this module;
``make lint`` checks the direction (pyproject.toml).
"""

from __future__ import annotations

import importlib
import logging
from collections import Counter
from collections.abc import Callable

from faust.worker import Worker

from agents import analysis, enrichment, ledger, market, strategy, user_commands
from agents.system import health, heartbeat, retry
from domain.ops.retry import RetryPolicy
from streams.engine import refuse_unsupported_guarantee
from streams.errors import ConfigError
from streams.faust.app import TickTideApp, faust_config
from streams.faust.context import WorkerApp
from streams.faust.patches.embedded import short_fetch_waits, use_fetched_high_watermarks
from streams.faust.patches.lifecycle import (
    bound_wait_empty,
    resume_flow_before_fetching,
    rewind_uncommitted_partitions,
    skip_decorator_scanning,
    start_replies_in_background,
    wait_for_created_topics,
)
from streams.faust.runtime import FaustRuntime
from streams.faust.typed_topic import declare_topics
from streams.hotpath.reader import TradeReader, declare_owner_topic
from streams.kafka.admin import resolve_flavor
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import registry_for
from streams.ops import collector
from streams.ops.metrics import LatencyWindow, Metrics
from streams.ops.scrape_metrics import install_ops_metrics
from streams.ops.worker_status import WorkerStatus
from streams.resilience.deadletter import DEADLETTER_TOPIC, DeadLetters
from streams.resilience.retry import RETRY_TOPIC, Retries
from streams.settings import Settings
from streams.web.assess import install_assess
from streams.web.dashboard import install_dashboard
from streams.web.health import install_health_views
from streams.web.market import install_market_views
from streams.web.trading import install_trading_views
from tables import analysis as analysis_tables
from tables import candles as candle_tables
from tables import enrichment as enrichment_tables
from tables import health as health_tables
from tables import trading as trading_tables

log = logging.getLogger(__name__)

Install = Callable[[WorkerApp], object]
TABLES: tuple[Install, ...] = (candle_tables.declare, analysis_tables.declare, enrichment_tables.declare,
                               trading_tables.declare, health_tables.declare)
"""Every table (tables/names.py lists their names); agents get theirs by declaring again."""
AGENTS: tuple[Install, ...] = (analysis.install, enrichment.install, health.install, heartbeat.install,
                               ledger.install, market.install, retry.install, strategy.install,
                               user_commands.install)
"""The built-in agents."""


def attach_services(app: TickTideApp, settings: Settings) -> None:
    """Build the worker's services and attach them to ``app``."""
    app.settings = settings
    app.codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
    app.metrics = metrics = Metrics()
    app.typed_topics = topics = declare_topics(app, settings, app.codec, metrics.events_sent)
    app.trade_owners = declare_owner_topic(app, settings)
    app.deadletters = DeadLetters(app.codec, topics[DEADLETTER_TOPIC].faust, metrics.deadletters)
    runtime = FaustRuntime(app)
    app.worker_status = status = WorkerStatus(settings, metrics.registry, runtime, app.deadletters.counts)
    app.trade_reader = runtime.trade_reader = TradeReader(settings, status)
    install_ops_metrics(metrics.registry, status)
    app.retries = Retries(RetryPolicy(settings.retry_max_attempts, settings.retry_backoff_s), app.deadletters,
                          topics[RETRY_TOPIC].faust, metrics.retries, status.error)
    app.processed = Counter()
    app.pipeline_latency = LatencyWindow(on_extend=lambda seconds: status.observe_latency("market.trades", seconds))
    app.service(app.trade_reader)  # type: ignore[arg-type]  # an instance is accepted


def extra_agents(settings: Settings) -> list[Install]:
    """The ``install`` functions of the user's own agent modules (``extra_agents``): named in
    settings, so imported by name; a module that does not import is a setting error."""
    installs = []
    for name in (n.strip() for n in settings.extra_agents.split(",")):
        if not name:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise ConfigError(f"invalid setting extra_agents (TICKTIDE_EXTRA_AGENTS): cannot import {name}: "
                              f"{error}") from None
        install = vars(module).get("install")
        if not callable(install):
            raise ConfigError(f"invalid setting extra_agents (TICKTIDE_EXTRA_AGENTS): {name} has no install(app)")
        installs.append(install)
    return installs


def install_web(app: WorkerApp) -> None:
    """Mount every web view."""
    install_health_views(app)
    install_dashboard(app)
    install_market_views(app)
    install_trading_views(app)
    install_assess(app, app.agents[enrichment.ASSESS_AGENT])


def build_worker(settings: Settings, *, embedded: bool = False) -> TickTideApp:
    """A ready-to-run worker app: services, tables, agents and web views in place."""
    if embedded:  # what differs on the embedded broker follows from the flavor (Settings)
        settings = settings.model_copy(update={"broker_flavor": "tansu"})
    refuse_unsupported_guarantee(settings.processing_guarantee, settings.engine)
    skip_decorator_scanning()
    app = TickTideApp(settings.app_id, **faust_config(settings))
    attach_services(app, settings)
    for declare in TABLES:
        declare(app)
    for install in AGENTS:
        install(app)
    for install in extra_agents(settings):
        install(app)
    install_web(app)
    resume_flow_before_fetching(app)
    rewind_uncommitted_partitions(app)
    bound_wait_empty()
    start_replies_in_background()
    wait_for_created_topics()
    if not settings.engine.list_offsets_is_end:
        use_fetched_high_watermarks(app, settings)
    if not settings.engine.fetch_answers_early:
        short_fetch_waits(settings.engine.agent_fetch_max_wait_ms)
    return app


def run_worker(settings: Settings) -> None:
    """Build the worker and run it until it is stopped."""
    settings = resolve_flavor(settings)
    app = build_worker(settings)
    # What is built so far lives as long as the process, and so does most of what survives a
    # generation-1 collection (the symbols' state): out of the collector's sight, a full
    # collection (Faust's stores run one per table on every rebalance and stop; Python runs
    # them as the state grows) has next to nothing to scan instead of 90-240 ms of objects.
    collector.freeze_what_survives()

    @app.timer(interval=collector.SWEEP_S, name="ops.collector_sweep")
    async def sweep_frozen_objects() -> None:
        """Cycles among frozen objects are collected too, once an hour."""
        log.info("full collection of every object, frozen ones included: %d collected", collector.sweep())

    Worker(app, loglevel=settings.log_level).execute_from_commandline()
