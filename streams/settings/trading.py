"""Paper trading: the account and its strategy, fills, risk limits, the ledger, and the
token that lets users send commands."""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import BaseModel, Field, SecretStr, field_validator

from domain.rules.commands import is_account
from domain.strategy.strategies import strategy_named

_TOKEN = re.compile(r"[\x21-\x7e]+")
MIN_API_TOKEN = 16
MAX_API_TOKEN = 256


class TradingSettings(BaseModel):
    """Paper trading's part of ``Settings``."""

    trading_account: str = Field("paper", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                 description="Paper account the strategy trades")
    trading_strategy: str = Field("ema_cross", description="Strategy (domain/strategy/strategies.py STRATEGIES)")
    trading_interval: str = Field("1m", description="Candle interval the strategy trades on")
    trading_enrichment_wait_s: float = Field(
        120.0, gt=0, description="Longest (wall clock) a decision waits for the enrichments it weighs")
    order_quantity: Decimal = Field(Decimal("0.01"), gt=0, description="Units per strategy order")
    initial_cash: Decimal = Field(Decimal(100_000), ge=0, description="Cash of a new paper account")
    fee_bps: Decimal = Field(Decimal(10), ge=0, description="Fee per fill, basis points of notional")
    slippage_bps: Decimal = Field(Decimal(5), ge=0, description="Fill price moved against us, basis points")
    fill_participation: Decimal = Field(Decimal("0.5"), gt=0, le=1, description="Share of a mark's size an order takes")
    max_position: Decimal = Field(Decimal(1), ge=0, description="Largest |position| per symbol (units)")
    max_gross_exposure: Decimal = Field(Decimal(1_000_000), ge=0, description="Largest sum |qty| x price")
    max_orders_per_minute: int = Field(30, ge=0, le=1000, description="Orders accepted per minute of event time")
    order_timeout_s: float = Field(30.0, gt=0, description="An order still open after this is expired")
    mark_interval_s: float = Field(1.0, gt=0, description="Event-time slice of trades in one fill mark")
    ledger_wait_s: float = Field(
        20.0, gt=0, description="Longest (wall clock) an account with no input at all waits for a strategy's "
        "progress before deciding what waits (the end of a feed; keep it above idle_close_s plus the analysis "
        "lag); with inputs coming, a silent strategy is waited for this plus trading_enrichment_wait_s")
    ledger_row_interval_s: float = Field(1.0, ge=0, description="Most a row lags its account, if cheap (README)")
    api_token: SecretStr | None = Field(
        None, description=f"Enables POST /commands, which requires it as a Bearer token "
                          f"(at least {MIN_API_TOKEN} characters)")

    @field_validator("api_token")
    @classmethod
    def _check_api_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if len(token) < MIN_API_TOKEN:
            raise ValueError(f"must be at least {MIN_API_TOKEN} characters (leave it unset to turn "
                             "POST /commands off)")
        if len(token) > MAX_API_TOKEN or not _TOKEN.fullmatch(token):
            raise ValueError(f"must be at most {MAX_API_TOKEN} printable ASCII characters without spaces")
        return value

    @field_validator("trading_account")
    @classmethod
    def _check_account(cls, value: str) -> str:
        if not is_account(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("trading_strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        strategy_named(value)
        return value
