"""Trading tables and the glue between their rows and the pure folds.

* ``portfolio``: account -> {"portfolio": the ledger fold's row (domain.trading.ledger), "prices":
  the latest market price per symbol, "seen_us": the latest input event time, "input":
  [partition, offset] of the last trading.commands record applied, "progress": per symbol
  how far its strategy has decided, "through_us": how far the account is decided in event
  time, "held": the orders and user commands waiting for that, as JSON records, "marks":
  per symbol the recent marks a decision can still use, in columns (``domain.market.marks.kept_columns``),
  "forgotten_us": per symbol that dropped older marks, the newest dropped}
  (domain.trading.account). Keyed by account like trading.commands and trading.events. Only
  "portfolio" is the projection of trading.events; ``ticktide rebuild portfolio`` compares
  exactly that part. A ledger restarted from the row decides as one that never stopped.
* ``strategy``: symbol -> the strategies' SymbolContext (domain.strategy.strategies).
* ``signals``: symbol -> the last KEEP_SIGNALS signals as JSON, oldest first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from faust.types import TableT

from domain.amounts import quantize
from domain.fold import Position
from domain.market import marks
from domain.strategy.gate import GatePlan
from domain.strategy.strategies import IGNORE_ENRICHMENTS, SymbolContext
from domain.trading import ledger_rows, orders
from domain.trading.account import Account
from domain.trading.orders import RiskLimits, TradingConfig
from schemas.records import RECORD_TYPES, Event, TradeSignal
from streams.faust.context import WorkerApp
from streams.kafka.json_form import event_to_json, record_from_json
from streams.kafka.ranges import read_partition
from streams.settings import Settings
from tables.names import PORTFOLIO, SIGNALS, STRATEGY
from tables.symbol_table import symbol_table

KEEP_SIGNALS = 500


def declare(app: WorkerApp) -> tuple[TableT[str, Any], TableT[str, Any], TableT[str, Any]]:
    """The portfolio, strategy and signals tables."""
    return (symbol_table(app, PORTFOLIO, "Paper portfolio per account (projection of trading.events)."),
            symbol_table(app, STRATEGY, "Strategy context per symbol."),
            symbol_table(app, SIGNALS, "Recent trade signals per symbol."))


def trading_config(settings: Settings) -> TradingConfig:
    """The paper broker's limits and fill model from settings."""
    return TradingConfig(
        limits=RiskLimits(settings.max_position, settings.max_gross_exposure, settings.max_orders_per_minute),
        fee_bps=settings.fee_bps, slippage_bps=settings.slippage_bps,
        participation=settings.fill_participation,
        order_timeout_us=int(settings.order_timeout_s * 1_000_000),
        account=settings.trading_account, strategy=settings.trading_strategy)


ROW_MARKS = 10_000
"""Most marks an account's row keeps (~35 bytes each: a changelog record must stay well under
Kafka's 1 MiB). Past it, each symbol keeps its newest ``ROW_MARKS // symbols`` (at least its
last, the price) and the row counts the rest as dropped (``forgotten_us``): a ledger restarted
from such a row denies an order older than what it kept (``stale_order``) where the one that
never stopped would have filled it. Hundreds of symbols reporting every second stay under it."""


ROW_SLICE = 250
"""Symbols whose marks are put in columns between two turns of the loop in
``account_row_in_slices`` (a few ms: with 5,000 symbols the whole row takes ~60-90 ms)."""


def _kept_marks(account: Account) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """The marks the row keeps per symbol, bounded by ``ROW_MARKS``, and the dropped marks' times."""
    kept = {symbol: recent for symbol, recent in account.marks.items() if recent}
    forgotten = dict(account.forgotten_us)
    if sum(map(len, kept.values())) > ROW_MARKS:
        keep = max(1, ROW_MARKS // len(kept))
        for symbol, recent in kept.items():
            if len(recent) > keep:
                forgotten[symbol] = max(forgotten.get(symbol, 0), orders.mark_time(recent[-keep - 1]))
                kept[symbol] = recent[-keep:]
    return kept, forgotten


def account_row(account: Account) -> dict[str, Any]:
    """The row of an account: everything its next decision needs."""
    kept, forgotten = _kept_marks(account)
    return _row(account, {symbol: marks.kept_columns(symbol, recent) for symbol, recent in kept.items()}, forgotten)


async def account_row_in_slices(account: Account) -> tuple[dict[str, Any], float]:
    """``account_row``, letting the loop run after every ``ROW_SLICE`` symbols' marks (with
    thousands of symbols the whole row is ~60-90 ms: in one go it held every other task that
    long); and the seconds spent making it, the loop's turns left out. The caller must not
    change the account meanwhile (the ledger agent awaits it)."""
    spent, began = 0.0, time.perf_counter()
    kept, forgotten = _kept_marks(account)
    columns = {}
    for n, (symbol, recent) in enumerate(kept.items(), start=1):
        columns[symbol] = marks.kept_columns(symbol, recent)
        if n % ROW_SLICE == 0:
            spent += time.perf_counter() - began
            await asyncio.sleep(0)
            began = time.perf_counter()
    row = _row(account, columns, forgotten)
    return row, spent + time.perf_counter() - began


def _row(account: Account, columns: dict[str, dict[str, Any]], forgotten: dict[str, int]) -> dict[str, Any]:
    return {"portfolio": ledger_rows.to_row(account.portfolio), "prices": account.prices,
            "seen_us": account.seen_us, "input": [account.applied.partition, account.applied.offset],
            "progress": account.progress, "through_us": account.through_us,
            "held": [[type(item).AVRO_NAME, event_to_json(item)] for item in account.held],
            "marks": columns, "forgotten_us": forgotten}


def load_account(table: TableT[str, Any], account: str, initial_cash: Decimal) -> Account:
    """The account's row (a new account holds only its initial cash)."""
    row = table.get(account)
    if row is None:
        return Account.open(account, initial_cash)
    state = Account(ledger_rows.from_row(row["portfolio"]), dict(row["prices"]), int(row.get("seen_us", 0)),
                    Position(*row["input"]))
    state.progress = {str(k): int(v) for k, v in row.get("progress", {}).items()}
    state.through_us = int(row.get("through_us", 0))
    state.held = [_as_decoded(record_from_json(RECORD_TYPES[name], data)) for name, data in row.get("held", [])]
    state.marks = {str(symbol): marks.kept_marks(str(symbol), kept) for symbol, kept in row.get("marks", {}).items()}
    state.forgotten_us = {str(k): int(v) for k, v in row.get("forgotten_us", {}).items()}
    return state


def _as_decoded(record: Any) -> Any:
    """A record read back from its JSON form as the codec decodes it: amounts with the
    contract's 18 places (``0.01`` comes back as ``0.010000000000000000``), so a held order
    decides to the same figures as one decided when it arrived."""
    amounts = {f.name: quantize(value) for f in dataclasses.fields(record)
               if isinstance(value := getattr(record, f.name), Decimal)}
    return dataclasses.replace(record, **amounts) if amounts else record


def gate_plan(settings: Settings) -> GatePlan:
    """What the strategy waits for, from the enrichment and trading settings."""
    inputs = set(settings.enrich_inputs.split(","))
    return GatePlan(trading_interval=settings.trading_interval, enrich_snapshots="indicators" in inputs,
                    enrich_anomalies="anomalies" in inputs, snapshot_interval=settings.enrich_snapshot_interval,
                    snapshot_every_s=settings.enrich_snapshot_every_s, wait_s=settings.trading_enrichment_wait_s,
                    weighs=settings.trading_strategy not in IGNORE_ENRICHMENTS)


def load_context(table: TableT[str, Any], symbol: str) -> SymbolContext:
    """A symbol's strategy context."""
    row = table.get(symbol)
    return SymbolContext(**row) if row is not None else SymbolContext(symbol)


def store_context(table: TableT[str, Any], context: SymbolContext) -> None:
    """Write a symbol's strategy context."""
    table[context.symbol] = dataclasses.asdict(context)


def remember_signal(table: TableT[str, Any], signal: TradeSignal) -> None:
    """Append a signal to its symbol's recent signals (a re-emitted one is not repeated)."""
    recent = list(table.get(signal.symbol) or [])
    if all(s["envelope"]["event_id"] != signal.envelope.event_id for s in recent):
        recent.append(event_to_json(signal))
    table[signal.symbol] = recent[-KEEP_SIGNALS:]


class LedgerTables:
    """The ledger driver's I/O (``streams.trading.ledger_driver.LedgerPorts``) in a worker."""

    def __init__(self, app: WorkerApp, table: TableT[str, Any], counter: str) -> None:
        self.app = app
        self.table = table
        self.counter = counter
        self.source = app.typed_topics["trading.commands"].name  # with the settings' topic prefix
        self.events = app.typed_topics["trading.events"]

    def row(self, account: str) -> Account:
        return load_account(self.table, account, self.app.settings.initial_cash)

    async def write(self, account: str, state: Account) -> float:
        row, made_s = await account_row_in_slices(state)
        began = time.perf_counter()
        self.table[account] = row
        return made_s + time.perf_counter() - began

    async def publish(self, account: str, events: Sequence[Event]) -> None:
        for event in events:  # all or nothing: a bad event must not leave the others sent
            self.app.codec.encode(event)
        pending = [await self.events.send_pending(event, key=account) for event in events]
        if pending:
            await asyncio.gather(*pending)

    async def inputs(self, account: str, partition: int, start: int, end: int) -> list[tuple[int, bytes | None]]:
        key, settings = account.encode(), self.app.settings
        return await asyncio.to_thread(lambda: [
            (raw.offset, raw.value) for raw in read_partition(settings, self.source, partition, start, end)
            if raw.key == key])

    def decode(self, value: bytes | None) -> Event:
        return self.app.decode_valid(value, Event)

    def accounts(self) -> Iterable[str]:
        return list(self.table.keys())

    def caught_up(self, inputs: int) -> None:
        self.app.count_processed(self.counter, inputs)
