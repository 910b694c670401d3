"""Trading tables and the glue between their rows and the pure folds.

* ``portfolio``: account -> {"portfolio": the ledger fold's row (domain.ledger), "prices":
  the latest market price per symbol, "input": [partition, offset] of the last
  trading.commands record decided}. Keyed by account like trading.commands and
  trading.events. Only "portfolio" is the projection of trading.events; ``ticktide
  rebuild portfolio`` compares exactly that part. The recent marks that orders fill
  against are kept in the owning worker's memory, not in the row: they change many times
  a second and are not state (a restarted worker fills against the marks that follow).
* ``strategy``: symbol -> the strategies' SymbolContext (domain.strategy).
* ``signals``: symbol -> the last KEEP_SIGNALS signals as JSON, oldest first.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from faust.types import TableT

from domain import ledger, ledger_rows
from domain.orders import RiskLimits, TradingConfig
from domain.strategy import SymbolContext
from schemas.records import TradeSignal
from streams.faust.context import WorkerApp
from streams.kafka.json_form import event_to_json
from streams.settings import Settings
from tables.names import PORTFOLIO, SIGNALS, STRATEGY
from tables.symbol_table import symbol_table

KEEP_SIGNALS = 500
KEEP_MARKS = 300
"""Recent marks kept per account and symbol (what a new order can fill against)."""


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
        order_timeout_us=int(settings.order_timeout_s * 1_000_000))


@dataclasses.dataclass(slots=True)
class AccountRow:
    """A portfolio row, unpacked: the ledger state, the latest market price of each symbol
    (for unrealised P&L in views) and the last input decided."""

    state: ledger.Portfolio
    prices: dict[str, str]
    partition: int
    offset: int

    def to_row(self) -> dict[str, Any]:
        return {"portfolio": ledger_rows.to_row(self.state), "prices": self.prices,
                "input": [self.partition, self.offset]}


def load_account(table: TableT[str, Any], account: str, initial_cash: Decimal) -> AccountRow:
    """The account's row (a new account holds only its initial cash)."""
    row = table.get(account)
    if row is None:
        return AccountRow(ledger.Portfolio.open(account, initial_cash), {}, -1, -1)
    return AccountRow(ledger_rows.from_row(row["portfolio"]), dict(row["prices"]), *row["input"])


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
