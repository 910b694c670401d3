"""analysis.indicators / .enrichments / .anomalies -> the strategy's context per symbol
(table ``strategy``) -> TradeSignal on trading.signals and, for the trading account, a
PlaceOrder on trading.commands (both with ids derived from the snapshot, so a crash or a
replay re-emits the same ones).

A snapshot is decided once the enrichments it weighs have arrived (domain.strategy.gate), so
the decisions do not depend on the order in which the three topics arrive. After the orders
of the snapshots it decided, a StrategyProgressed (how far the symbol is decided) goes to the
account's ledger, which decides the account in event time up to where every symbol's
strategy has come. (The marks the account's orders fill against come out of the candle
fold's runs, agents/market.py; user commands reach trading.commands through
agents/user_commands.py.)
"""

from __future__ import annotations

import asyncio
import logging
import time

from faust import StreamT

from domain.clock import from_micros
from domain.strategy.gate import gated_enrichment, gated_snapshot
from domain.strategy.strategies import SymbolContext, Wish, observe_anomaly, signal_record, strategy_named
from domain.trading.orders import order_for_signal, progress_record
from schemas.records import Anomaly, Enrichment, Event, IndicatorSnapshot, utc_now
from streams.errors import UnexpectedRecordType
from streams.faust.context import WorkerApp
from tables import trading as glue

log = logging.getLogger(__name__)
AGENT = "trading.signals"
PRODUCER = "agent.trading"


def install(app: WorkerApp) -> None:
    """Register the strategy's agent."""
    _, strategy_table, signals_table = glue.declare(app)
    settings = app.settings
    strategy = strategy_named(settings.trading_strategy)
    plan = glue.gate_plan(settings)
    topics = app.typed_topics
    inputs = app.topic(*(topics[n].name for n in ("analysis.indicators", "analysis.enrichments",
                                                   "analysis.anomalies")),
                       key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(inputs, name=AGENT)
    async def signals(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=AGENT):
                record = app.decode_valid(message.value, Event)
                if isinstance(record, IndicatorSnapshot):
                    context = glue.load_context(strategy_table, record.symbol)
                    before = context.decided_early, context.last_candle_end_us
                    await decide(context, gated_snapshot(context, record, strategy, plan, time.time()), before)
                elif isinstance(record, Enrichment):
                    if record.symbol:  # keyed by symbol only when it has one
                        context = glue.load_context(strategy_table, record.symbol)
                        before = context.decided_early, context.last_candle_end_us
                        await decide(context, gated_enrichment(context, record, strategy, plan, time.time()),
                                     before)
                elif isinstance(record, Anomaly):
                    context = glue.load_context(strategy_table, record.symbol)
                    observe_anomaly(context, record)
                    glue.store_context(strategy_table, context)
                else:
                    raise UnexpectedRecordType(f"{type(record).__name__} on {message.topic}")
            app.count_processed(AGENT)

    async def decide(context: SymbolContext, decided: list[tuple[IndicatorSnapshot, Wish]],
                     before: tuple[int, int]) -> None:
        """Send the signals and orders of the decisions now due, then the symbol's progress
        (after its orders, in the same partition), then write the context."""
        early, through_us = before
        for snapshot, wish in decided:
            now = utc_now()
            signal = signal_record(snapshot, wish, settings.trading_strategy, PRODUCER, now)
            order = order_for_signal(signal, settings.trading_account, settings.order_quantity, now)
            await asyncio.gather(await topics["trading.signals"].send_pending(signal),
                                 await topics["trading.commands"].send_pending(order))
            glue.remember_signal(signals_table, signal)
        if context.last_candle_end_us > through_us:
            progress = progress_record(settings.trading_account, context.symbol, settings.trading_strategy,
                                       from_micros(context.last_candle_end_us), utc_now())
            await topics["trading.commands"].send(progress, key=settings.trading_account)
        if context.decided_early != early:
            log.warning("%s: decided after %.0f s without all its enrichments (%d times so far)",
                        context.symbol, plan.wait_s, context.decided_early)
        glue.store_context(strategy_table, context)
