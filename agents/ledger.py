"""trading.commands -> the paper ledger -> trading.events (the only source of truth).

One account's orders, marks, expiry requests and user commands arrive in one partition,
in order. Each is decoded and checked, then folded by ``domain.fold.step`` with the pure
``domain.account.evolve``; its events are sent and acknowledged by the broker before the
row (with the input's position) is written. A crash in between re-decides the same input
from the old row and re-emits events with the same ids, which the fold ignores; an input
the row already holds is skipped. The account is decided in event time up to where every
symbol's strategy has progressed (domain.account): orders and commands after that wait in
the row. Orders expire by their symbol's marks and the inputs' event time; a timer sends
ExpireOrders for accounts that get no input, and for accounts whose inputs have waited for
a silent strategy longer than ``ledger_wait_s`` (plus the strategy's own wait for its
enrichments while other inputs come). The recent marks per symbol (and how far back they
were dropped), and how far each account's time has come between row writes, live in this
worker's memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from faust import StreamT

from domain.account import INPUT_TYPES, Account, Patience, decider, idle_expiry_time
from domain.clock import from_micros, to_micros
from domain.field_rules import ACCOUNT_RULE
from domain.fold import step
from schemas.records import Event, ExpireOrders, Mark, utc_now
from streams.errors import InvalidValue, UnexpectedRecordType
from streams.faust.context import WorkerApp
from tables import trading as glue

AGENT = "trading.ledger"
PRODUCER = "agent.ledger"


def account_of(key: bytes | None) -> str:
    """The account a trading.commands record is keyed by; InvalidValue for a key that is not
    an account name (a foreign producer's key must not become a portfolio row)."""
    text = key.decode("utf-8", "replace") if key else ""
    problem = ACCOUNT_RULE(text)
    if problem is not None:
        raise InvalidValue("key", problem)
    return text


def install(app: WorkerApp) -> None:
    """Register the ledger agent and the idle-account expiry timer."""
    table, _, _ = glue.declare(app)
    settings = app.settings
    config = glue.trading_config(settings)
    decide = decider(config)
    source = app.typed_topics["trading.commands"]
    events_topic = app.typed_topics["trading.events"]
    marks: dict[str, dict[str, list[Mark]]] = {}  # account -> symbol -> recent marks (memory)
    forgotten: dict[str, dict[str, int]] = {}  # account -> symbol -> time of the newest mark dropped
    written_at: dict[str, float] = {}  # account -> when its row was last written
    applied_at: dict[str, float] = {}  # account -> when it last applied an input
    advanced_at: dict[str, float] = {}  # account -> when its event time last moved on (or began to wait)
    patience = Patience(idle_us=int(settings.ledger_wait_s * 1_000_000),
                        stalled_us=int((settings.ledger_wait_s + settings.trading_enrichment_wait_s) * 1_000_000))
    started = time.monotonic()

    async def publish(account: str, events: Sequence[Event]) -> None:
        for event in events:  # all or nothing: a bad event must not leave the others sent
            app.codec.encode(event)
        pending = [await events_topic.send_pending(e, key=account) for e in events]
        if pending:
            await asyncio.gather(*pending)

    clocks: dict[str, tuple[dict[str, int], int, int]] = {}  # account -> progress, through_us, seen_us

    def load(account: str) -> Account:
        state = glue.load_account(table, account, settings.initial_cash)
        state.marks = marks.setdefault(account, {})
        state.forgotten_us = forgotten.setdefault(account, {})
        # The row is written at most once a second for an input that emits nothing: how far
        # the account's time has come lives here between writes (the row has it for a restart).
        if account in clocks:
            state.progress, state.through_us, state.seen_us = clocks[account]
        return state

    def keep(account: str, state: Account) -> None:
        clocks[account] = state.progress, state.through_us, state.seen_us

    @app.agent(source.faust, name=AGENT)
    async def ledger(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=AGENT):
                record = app.decode_valid(message.value, Event)
                if not isinstance(record, INPUT_TYPES):
                    raise UnexpectedRecordType(f"{type(record).__name__} on trading.commands")
                account = account_of(message.key)
                state = load(account)
                before, waited, through, held = state.applied, state.waiting(), state.through_us, len(state.held)
                state, emitted = step(decide, state, record, message.partition, message.offset)
                keep(account, state)
                if state.applied != before:
                    await publish(account, emitted)
                    applied_at[account] = time.monotonic()
                    if state.through_us != through or not waited:
                        advanced_at[account] = time.monotonic()
                    # A mark or a progress that changed nothing is written at most once a
                    # second: re-deciding it after a crash changes nothing either (a held
                    # input is written at once: it must not be lost).
                    if emitted or len(state.held) != held or time.monotonic() - written_at.get(account, 0.0) > 1.0:
                        table[account] = glue.account_row(state)
                        written_at[account] = time.monotonic()
            app.count_processed(AGENT)

    @app.timer(interval=1.0, name="trading.order_timeouts")
    async def request_expiry() -> None:
        """Once a second, for each account whose open orders are due by its latest input
        time moved on by the time it has been idle, or whose inputs have waited too long for
        a silent strategy, send ExpireOrders at that time: the request is an input like any
        other, in order, so re-deciding it gives the same events."""
        now = time.monotonic()
        now_us = to_micros(utc_now())
        for account in glue.open_accounts(table):
            idle_us = int((now - applied_at.get(account, started)) * 1_000_000)
            stalled_us = int((now - advanced_at.get(account, started)) * 1_000_000)
            as_of = idle_expiry_time(load(account), idle_us, config, stalled_us, patience)
            if as_of is not None:
                at = from_micros(min(as_of, now_us))
                await source.send(ExpireOrders(envelope=ExpireOrders.envelope_for(event_time=at, producer=PRODUCER),
                                               account=account), key=account)
