"""trading.commands -> the paper ledger -> trading.events (the only source of truth).

One account's orders, marks and user commands arrive in one partition, in order. For each
the pure decisions (domain.orders) emit trading events, folded into the account's state
with the same fold rebuild uses; the events are sent and acknowledged by the broker before
the row (with the input offset) is written. A crash in between re-decides the same input
from the old row and re-emits events with the same ids, which the fold ignores; an input
at or before the row's offset is skipped. Orders that outlived the saga timeout are closed
with compensating OrderRejected events when a timer's request (an input too) arrives.
"""

from __future__ import annotations

import asyncio
import time

from faust import StreamT

from domain import controls, orders
from domain.clock import to_micros
from domain.field_rules import ACCOUNT_RULE
from domain.orders import Mark
from schemas.records import Event, PlaceOrder, Trade, UserCommand, utc_now
from streams.errors import InvalidValue, UnexpectedRecordType
from streams.faust.context import WorkerApp
from tables import trading as glue

AGENT = "trading.ledger"
TIMER = "agent.ledger.timer"
EXPIRE = "expire_orders"


def account_of(key: bytes | None) -> str:
    """The account a trading.commands record is keyed by; InvalidValue for a key that is not
    an account name (a foreign producer's key must not become a portfolio row)."""
    text = key.decode("utf-8", "replace") if key else ""
    problem = ACCOUNT_RULE(text)
    if problem is not None:
        raise InvalidValue("key", problem)
    return text


def install(app: WorkerApp) -> None:
    """Register the ledger agent and the order-timeout timer."""
    table, _, _ = glue.declare(app)
    settings = app.settings
    config = glue.trading_config(settings)
    source = app.typed_topics["trading.commands"]
    events_topic = app.typed_topics["trading.events"]

    async def publish(account: str, events: list[Event]) -> None:
        for event in events:  # all or nothing: a bad event must not leave the others sent
            app.codec.encode(event)
        pending = [await events_topic.send_pending(e, key=account) for e in events]
        if pending:
            await asyncio.gather(*pending)

    marks: dict[str, dict[str, list[Mark]]] = {}  # account -> symbol -> recent marks (memory)
    written_at: dict[str, float] = {}  # account -> when its row was last written

    def decide(row: glue.AccountRow, record: Event) -> list[Event]:
        recent = marks.setdefault(row.state.account, {})
        if isinstance(record, PlaceOrder):
            return orders.place(row.state, record, config, recent)
        if isinstance(record, Trade):
            mark = Mark(record.envelope.event_id, record.symbol, record.price, record.size,
                        to_micros(record.trade_time), record.trade_id)
            if not orders.remember_mark(recent, mark, glue.KEEP_MARKS):
                return []
            row.prices[mark.symbol] = str(mark.price)
            return orders.on_mark(row.state, mark, config, record)
        if isinstance(record, UserCommand) and record.command == EXPIRE and record.envelope.producer == TIMER:
            return orders.expire(row.state, to_micros(record.envelope.event_time), config)
        if isinstance(record, UserCommand):
            return controls.command(row.state, record, config, recent)
        raise UnexpectedRecordType(f"{type(record).__name__} on trading.commands")

    @app.agent(source.faust, name=AGENT)
    async def ledger(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=AGENT):
                record = app.decode_valid(message.value, Event)
                account = account_of(message.key)
                row = glue.load_account(table, account, settings.initial_cash)
                if row.partition != message.partition or message.offset > row.offset:
                    emitted = decide(row, record)
                    await publish(account, emitted)
                    row.partition, row.offset = message.partition, message.offset
                    # A mark that changed nothing is written at most once a second (for
                    # its price): re-deciding it after a crash changes nothing either.
                    if emitted or time.monotonic() - written_at.get(account, 0.0) > 1.0:
                        table[account] = row.to_row()
                        written_at[account] = time.monotonic()
            app.count_processed(AGENT)

    @app.timer(interval=1.0, name="trading.order_timeouts")
    async def request_expiry() -> None:
        """Once a second, ask the ledger to expire each account's overdue orders: the
        request goes through trading.commands, so the decision is an input like any
        other, in order, and re-deciding it after a crash gives the same events."""
        now = utc_now()
        for account, row in list(table.items()):
            if any(o["status"] == "OPEN" for o in row["portfolio"]["orders"].values()):
                tick = UserCommand(envelope=UserCommand.envelope_for(event_time=now, producer=TIMER),
                                   command=EXPIRE, user="system")
                await source.send(tick, key=account)
