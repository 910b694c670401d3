"""Strategy signals, market marks and user commands for the paper ledger.

* analysis.indicators / .enrichments / .anomalies -> the strategy's context per symbol
  (table ``strategy``) -> TradeSignal on trading.signals and, for the trading account, a
  PlaceOrder on trading.commands (both with ids derived from the snapshot, so a crash or
  a replay re-emits the same ones). A snapshot is decided once the enrichments it weighs
  have arrived (domain.strategy_gate), so the decisions do not depend on the order in
  which the three topics arrive.
* (marks, what the account's orders fill against, come out of the candle fold's runs: each
  trade is decoded once, tables/candles.py publishes them to trading.commands)
* user.commands (PauseStrategy, SetRiskLimit, ...) -> trading.commands, keyed by the
  account the command names (else the trading account), so the ledger applies it in
  order with orders.
"""

from __future__ import annotations

import asyncio
import logging
import time

from faust import StreamT

from domain.orders import order_for_signal
from domain.strategy import SymbolContext, Wish, observe_anomaly, signal_record, strategy_named
from domain.strategy_gate import gated_enrichment, gated_snapshot
from schemas.records import (
    COMMAND_TYPES,
    Anomaly,
    Command,
    Enrichment,
    Event,
    IndicatorSnapshot,
    utc_now,
)
from streams.errors import UnexpectedRecordType
from streams.faust.context import WorkerApp
from tables import trading as glue

log = logging.getLogger(__name__)
SIGNALS_AGENT = "trading.signals"
COMMANDS_AGENT = "trading.user_commands"
PRODUCER = "agent.trading"


def install(app: WorkerApp) -> None:
    """Register the signal, mark and user-command agents."""
    _, strategy_table, signals_table = glue.declare(app)
    settings = app.settings
    strategy = strategy_named(settings.trading_strategy)
    plan = glue.gate_plan(settings)
    topics = app.typed_topics
    inputs = app.topic(*(topics[n].name for n in ("analysis.indicators", "analysis.enrichments",
                                                   "analysis.anomalies")),
                       key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(inputs, name=SIGNALS_AGENT)
    async def signals(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=SIGNALS_AGENT):
                record = app.decode_valid(message.value, Event)
                if isinstance(record, IndicatorSnapshot):
                    context = glue.load_context(strategy_table, record.symbol)
                    early = context.decided_early
                    await decide(context, gated_snapshot(context, record, strategy, plan, time.time()), early)
                elif isinstance(record, Enrichment):
                    if record.symbol:  # keyed by symbol only when it has one
                        context = glue.load_context(strategy_table, record.symbol)
                        early = context.decided_early
                        await decide(context, gated_enrichment(context, record, strategy, plan, time.time()), early)
                elif isinstance(record, Anomaly):
                    context = glue.load_context(strategy_table, record.symbol)
                    observe_anomaly(context, record)
                    glue.store_context(strategy_table, context)
                else:
                    raise UnexpectedRecordType(f"{type(record).__name__} on {message.topic}")
            app.count_processed(SIGNALS_AGENT)

    async def decide(context: SymbolContext, decided: list[tuple[IndicatorSnapshot, Wish]], early: int) -> None:
        """Send the signals and orders of the decisions now due, then write the context."""
        for snapshot, wish in decided:
            now = utc_now()
            signal = signal_record(snapshot, wish, settings.trading_strategy, PRODUCER, now)
            order = order_for_signal(signal, settings.trading_account, settings.order_quantity, now)
            await asyncio.gather(await topics["trading.signals"].send_pending(signal),
                                 await topics["trading.commands"].send_pending(order))
            glue.remember_signal(signals_table, signal)
        if context.decided_early != early:
            log.warning("%s: decided after %.0f s without all its enrichments (%d times so far)",
                        context.symbol, plan.wait_s, context.decided_early)
        glue.store_context(strategy_table, context)

    @app.agent(topics["user.commands"].faust, name=COMMANDS_AGENT)
    async def user_commands(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=COMMANDS_AGENT):
                command = app.decode_valid(message.value, Event)
                if not isinstance(command, COMMAND_TYPES):
                    raise UnexpectedRecordType(f"{type(command).__name__} on {message.topic}")
                await topics["trading.commands"].send(command, key=command_account(command, settings.trading_account))
            app.count_processed(COMMANDS_AGENT)


def command_account(command: Command, default: str) -> str:
    """The account a user command goes to: the one it names, else the trading account."""
    return command.account or default
