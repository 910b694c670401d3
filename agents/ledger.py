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
account over folds again the inputs its row does not hold yet: the orchestration is
``streams.trading.ledger_driver.LedgerDriver``, its I/O ``tables.trading.LedgerTables``.
"""

from __future__ import annotations

from typing import Any

from faust import StreamT

from domain.clock import from_micros, to_micros
from domain.rules.fields import ACCOUNT_RULE
from domain.trading.account import INPUT_TYPES, Patience, decider
from schemas.records import Event, ExpireOrders, utc_now
from streams.errors import InvalidValue, UnexpectedRecordType
from streams.faust.context import WorkerApp
from streams.trading.ledger_driver import LedgerDriver
from tables import trading as glue

AGENT = "trading.ledger"
CAUGHT_UP = "trading.ledger.catch_up"
"""Counter (in /health and /metrics, as an agent's ``processed``) of the inputs a worker
folded again after an account's row when it took the account over."""
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
    source = app.typed_topics["trading.commands"]
    patience = Patience(idle_us=int(settings.ledger_wait_s * 1_000_000),
                        stalled_us=int((settings.ledger_wait_s + settings.trading_enrichment_wait_s) * 1_000_000))
    driver = LedgerDriver(decider(config), glue.LedgerTables(app, table, CAUGHT_UP), config, patience,
                          settings.ledger_row_interval_s)

    @app.on_partitions_revoked.connect
    async def forget_on_revoke(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        driver.forget()

    @app.on_rebalance_complete.connect
    async def forget_on_assignment(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        driver.forget()

    @app.agent(source.faust, name=AGENT)
    async def ledger(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            driver.handed(message.partition, message.offset)
            async with app.deadletters.guard(message, agent=AGENT):
                record = app.decode_valid(message.value, Event)
                if not isinstance(record, INPUT_TYPES):
                    raise UnexpectedRecordType(f"{type(record).__name__} on trading.commands")
                await driver.on_input(account_of(message.key), record, message.partition, message.offset)
            app.count_processed(AGENT)

    @app.timer(interval=1.0, name="trading.order_timeouts")
    async def request_expiry() -> None:
        """Once a second, send ExpireOrders for each account the driver finds due: the
        request is an input like any other, in order, so re-deciding it gives the same events."""
        for account, at_us in driver.due_expiries(to_micros(utc_now())):
            envelope = ExpireOrders.envelope_for(event_time=from_micros(at_us), producer=PRODUCER)
            await source.send(ExpireOrders(envelope=envelope, account=account), key=account)
