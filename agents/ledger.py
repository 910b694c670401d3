"""trading.commands -> the paper ledger -> trading.events (the only source of truth).

One account's orders, marks, expiry requests and user commands arrive in one partition,
in order. Each is decoded and checked, then folded by ``domain.fold.step`` with the pure
``domain.trading.account.evolve``; its events are sent and acknowledged by the broker before the
row (with the input's position) is written. A crash in between re-decides the same input
from the old row and re-emits events with the same ids, which the fold ignores; an input
the row already holds is skipped. The account is decided in event time up to where every
symbol's strategy has progressed (domain.trading.account): orders and commands after that wait in
the row. Orders expire by their symbol's marks and the inputs' event time; a timer sends
ExpireOrders for accounts that got no input for ``ledger_wait_s``, and for accounts whose
inputs have waited for a silent strategy that long (plus the strategy's own wait for its
enrichments while other inputs come). The account's state, recent marks included, is in
its row; this worker holds it in memory between row writes, and a worker that takes an
account over folds again the inputs its row does not hold yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from faust import StreamT

from domain.clock import from_micros, to_micros
from domain.fold import step
from domain.rules.fields import ACCOUNT_RULE
from domain.trading.account import INPUT_TYPES, Account, Patience, decider, idle_expiry_time
from schemas.records import Event, ExpireOrders, utc_now
from streams.errors import DecodeError, InvalidValue, UnexpectedRecordType
from streams.faust.context import WorkerApp
from streams.kafka.ranges import read_partition
from tables import trading as glue

log = logging.getLogger(__name__)
AGENT = "trading.ledger"
CAUGHT_UP = "trading.ledger.catch_up"
"""Counter (in /health and /metrics, as an agent's ``processed``) of the inputs a worker
folded again after an account's row when it took the account over."""
PRODUCER = "agent.ledger"
ROW_WRITE_SHARE = 0.01
"""The most of the worker's time that writing rows for inputs that emit nothing may take. A
row holding thousands of symbols' marks takes ~0.2 s to write: written every second, it held
the event loop (and the candle fold in it) that long every second; now about every 20 s."""


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
    accounts: dict[str, Account] = {}  # account -> its state, ahead of its row by what emitted nothing
    written_at: dict[str, float] = {}  # account -> when this worker last wrote its row
    row_write_s: dict[str, float] = {}  # account -> how long the last write of its row took
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

    rows_read: dict[str, Account] = {}  # account -> as its row had it, not folded here since
    # Between two rebalances this worker is the only one that writes its accounts' rows, so it
    # reads a row once: not for every input (with thousands of symbols a row holds ~10,000
    # marks, and decoding it took half the worker's time).

    handed_through: dict[int, int] = {}  # partition -> the last offset Faust handed over

    def forget() -> None:
        """Partitions move (another worker may fold these accounts on), or Faust skipped
        records (after a rebalance it may hand over records from a stale position, then seek
        on to the committed offset): read the rows again, and fold on from them."""
        accounts.clear()
        rows_read.clear()
        handed_through.clear()

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        forget()

    @app.on_rebalance_complete.connect
    async def forget_on_assignment(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        forget()

    def load(account: str) -> Account:
        """The account as this worker holds it, else as its row has it."""
        state = accounts.get(account) or rows_read.get(account)
        if state is None:
            state = rows_read[account] = glue.load_account(table, account, settings.initial_cash)
        return state

    async def catch_up(account: str, state: Account, partition: int, offset: int) -> Account:
        """Fold again this account's inputs after its row's position and before ``offset``:
        the row is written at most every ``ledger_row_interval_s`` for inputs that emit
        nothing, so a worker that stopped may have applied (and committed) inputs its row
        does not hold. Counted as ``CAUGHT_UP``."""
        start = state.applied.offset + 1
        if state.applied.partition != partition or start >= offset:
            return state
        key = account.encode()
        raws = await asyncio.to_thread(
            lambda: [raw for raw in read_partition(settings, source.name, partition, start, offset) if raw.key == key])
        for raw in raws:
            try:  # what failed before was dead-lettered then
                record = app.decode_valid(raw.value, Event)
                if isinstance(record, INPUT_TYPES):
                    state, emitted = step(decide, state, record, raw.partition, raw.offset)
                    await publish(account, emitted)  # the same ids as before, if any was sent
            except (DecodeError, InvalidValue, TypeError, ValueError, ArithmeticError):
                continue
        app.count_processed(CAUGHT_UP, len(raws))
        log.info("ledger %s: folded %d inputs again after its row (offsets %d..%d)",
                 account, len(raws), start, offset - 1)
        return state

    @app.agent(source.faust, name=AGENT)
    async def ledger(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            last = handed_through.get(message.partition, message.offset - 1)
            if message.offset > last + 1:
                log.info("ledger: trading.commands[%d] %d..%d not handed over here: folding on from the rows",
                         message.partition, last + 1, message.offset - 1)
                forget()
            handed_through[message.partition] = max(message.offset, last)
            async with app.deadletters.guard(message, agent=AGENT):
                record = app.decode_valid(message.value, Event)
                if not isinstance(record, INPUT_TYPES):
                    raise UnexpectedRecordType(f"{type(record).__name__} on trading.commands")
                account = account_of(message.key)
                state = load(account)
                rows_read.pop(account, None)  # a failure below: the next input reads the row again
                if state is not accounts.get(account):  # its row's: fold on what the row does not hold
                    state = await catch_up(account, state, message.partition, message.offset)
                    written_at.pop(account, None)  # write what it now holds with this input
                before, waited, through, held = state.applied, state.waiting(), state.through_us, len(state.held)
                accounts.pop(account, None)  # a failure below: the next input starts again from the row
                state, emitted = step(decide, state, record, message.partition, message.offset)
                if state.applied != before:
                    await publish(account, emitted)
                accounts[account] = state
                rows_read.pop(account, None)  # read meanwhile (the timer) or before: memory is ahead
                if state.applied != before:
                    applied_at[account] = time.monotonic()
                    if state.through_us != through or not waited:
                        advanced_at[account] = time.monotonic()
                    # An input that emits nothing is written at most every ``ledger_row_interval_s``,
                    # or less often when writes of the row would take over ``ROW_WRITE_SHARE``
                    # of the time (the first one this worker folds at once, so the row says
                    # where it began): a worker that takes over folds again what its row does
                    # not hold (``catch_up``); a held input is written at once.
                    last = written_at.get(account)
                    wait_s = max(settings.ledger_row_interval_s, row_write_s.get(account, 0.0) / ROW_WRITE_SHARE)
                    if emitted or len(state.held) != held or last is None or time.monotonic() - last >= wait_s:
                        row, made_s = await glue.account_row_in_slices(state)
                        started_write = time.perf_counter()
                        table[account] = row
                        row_write_s[account] = made_s + time.perf_counter() - started_write
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
        for account in list(table.keys()):
            idle_us = int((now - applied_at.get(account, started)) * 1_000_000)
            stalled_us = int((now - advanced_at.get(account, started)) * 1_000_000)
            as_of = idle_expiry_time(load(account), idle_us, stalled_us, patience, config)
            if as_of is not None:
                at = from_micros(min(as_of, now_us))
                await source.send(ExpireOrders(envelope=ExpireOrders.envelope_for(event_time=at, producer=PRODUCER),
                                               account=account), key=account)
