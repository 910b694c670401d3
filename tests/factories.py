"""Factories for every event type: ``make_<snake_name>(**overrides)`` gives one valid record.

Values look like real market data (Decimal prices as the venue sends them, aware UTC
datetimes with microseconds, typed enums) and every optional field is filled, so a round
trip exercises every union branch. Pass ``envelope=make_envelope(Trade, ...)`` or any field
as an override; overrides are not validated here (tests use that to build bad records).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from schemas.records import (
    Anomaly,
    BookTop,
    Candle,
    CommandAcknowledged,
    ComponentStatus,
    DeadLetter,
    EngageKillSwitch,
    Enrichment,
    EnrichmentSource,
    Envelope,
    Event,
    ExpireOrders,
    FlattenPosition,
    HealthStatus,
    Heartbeat,
    IndicatorSnapshot,
    Mark,
    News,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderType,
    PauseStrategy,
    PlaceOrder,
    PositionChanged,
    Priority,
    Regime,
    ReleaseKillSwitch,
    ResumeStrategy,
    SetRiskLimit,
    Side,
    StrategyProgressed,
    Trade,
    TradeSignal,
    UserCommand,
)

E = TypeVar("E", bound=Event)

T0 = datetime(2024, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
"""Event time of every factory record (a Binance BTCUSDT trade, 14 March 2024)."""
INGEST_DELAY = timedelta(microseconds=1_234_567)
ACCOUNT = "paper-main"
SYMBOL = "BTCUSDT"
VENUE = "binance-usdm"
CORRELATION_ID = "0d7f3c52-9a1e-4f8b-b6a4-2f1c8e0d9b31"


def make_envelope(cls: type[Event], **overrides: Any) -> Envelope:
    """An envelope for ``cls`` at T0 with lineage filled in; any field can be overridden."""
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": cls.__name__,
        "event_time": T0,
        "ingest_time": T0 + INGEST_DELAY,
        "producer": "tests.factories",
        "schema_version": cls.SCHEMA_VERSION,
        "correlation_id": CORRELATION_ID,
        "causation_id": "5b1e8a90-3c2d-4e7f-8a6b-9d0c1e2f3a4b",
        "priority": Priority.HIGH,
        "retry_count": 0,
    }
    return Envelope(**{**fields, **overrides})


def _build(cls: type[E], defaults: dict[str, Any], overrides: dict[str, Any]) -> E:
    fields = {**defaults, **overrides}
    fields.setdefault("envelope", make_envelope(cls))
    return cls(**fields)


# --- market ---------------------------------------------------------------------------


def make_trade(**overrides: Any) -> Trade:
    """An aggregate BTCUSDT trade with every v2 field set."""
    return _build(Trade, {
        "venue": VENUE,
        "symbol": SYMBOL,
        "trade_id": 2_041_337_901,
        "price": Decimal("64012.10"),
        "size": Decimal("0.003"),
        "taker_side": Side.BUY,
        "trade_time": T0,
        "trade_type": "MARKET",
        "first_trade_id": 4_711_002_118,
        "last_trade_id": 4_711_002_121,
    }, overrides)


def make_book_top(**overrides: Any) -> BookTop:
    """Best bid/ask one tick apart."""
    return _build(BookTop, {
        "venue": VENUE,
        "symbol": SYMBOL,
        "bid_price": Decimal("64012.00"),
        "bid_size": Decimal("3.412"),
        "ask_price": Decimal("64012.10"),
        "ask_size": Decimal("0.875"),
        "update_id": 40_129_555_871_002,
        "quote_time": T0 - timedelta(microseconds=412),
    }, overrides)


def make_news(**overrides: Any) -> News:
    """A headline naming two symbols (non-ASCII text on purpose)."""
    return _build(News, {
        "headline": "Spot bitcoin ETFs see record inflows — BTC tops $64k",
        "source": "newswire",
        "symbols": [SYMBOL, "ETHUSDT"],
        "url": "https://example.com/markets/btc-etf-inflows",
        "published_time": T0 - timedelta(minutes=3, microseconds=250_001),
    }, overrides)


# --- analysis -------------------------------------------------------------------------


def make_candle(**overrides: Any) -> Candle:
    """A closed 1m candle whose figures are consistent (low <= open, close <= high)."""
    start = T0.replace(second=0, microsecond=0)
    return _build(Candle, {
        "symbol": SYMBOL,
        "interval": "1m",
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "open": Decimal("63998.40"),
        "high": Decimal("64030.00"),
        "low": Decimal("63991.20"),
        "close": Decimal("64012.10"),
        "volume": Decimal("41.227"),
        "quote_volume": Decimal("2638904.7153"),
        "vwap": Decimal("64008.163708734567891234"),
        "trade_count": 1_874,
        "buy_volume": Decimal("22.904"),
        "sell_volume": Decimal("18.323"),
        "first_trade_id": 4_711_000_247,
        "last_trade_id": 4_711_002_121,
        "taker_buy_quote_volume": Decimal("1466070.3355"),
        "close_time": start + timedelta(minutes=1, milliseconds=-1),
    }, overrides)


def make_indicator_snapshot(**overrides: Any) -> IndicatorSnapshot:
    """Indicators after a 1m candle, every optional one computed."""
    return _build(IndicatorSnapshot, {
        "symbol": SYMBOL,
        "interval": "1m",
        "candle_id": "BTCUSDT:1m:2024-03-14T09:26:00Z",
        "candle_end": T0.replace(second=0, microsecond=0) + timedelta(minutes=1),
        "close": Decimal("64012.10"),
        "ema_fast": 64001.8375,
        "ema_slow": 63974.0125,
        "rsi": 58.21,
        "atr": 41.35,
        "realised_volatility": 0.0123,
        "volume_zscore": 1.87,
    }, overrides)


def make_anomaly(**overrides: Any) -> Anomaly:
    """A volume spike over its z-score threshold."""
    return _build(Anomaly, {
        "symbol": SYMBOL,
        "interval": "1m",
        "rule": "volume_zscore",
        "value": 4.62,
        "threshold": 3.0,
        "candle_id": "BTCUSDT:1m:2024-03-14T09:26:00Z",
        "description": "1m volume 4.62 standard deviations above its 60-candle mean",
    }, overrides)


def make_enrichment(**overrides: Any) -> Enrichment:
    """Claude's reading of an anomaly."""
    return _build(Enrichment, {
        "subject_event_id": "9f0e1d2c-3b4a-4596-8877-665544332211",
        "subject_type": "Anomaly",
        "symbol": SYMBOL,
        "regime": Regime.VOLATILE,
        "sentiment": 0.35,
        "risk_flags": ["volume_spike", "macro_event"],
        "confidence": 0.72,
        "rationale": "Volume spike coincides with ETF inflow headlines; trend intact.",
        "model": "claude-sonnet-4-5",
        "prompt_version": "anomaly-v3",
        "input_tokens": 812,
        "output_tokens": 96,
        "latency_ms": 1432.5,
        "cache_hit": False,
        "source": EnrichmentSource.CLAUDE,
    }, overrides)


# --- trading --------------------------------------------------------------------------


def make_trade_signal(**overrides: Any) -> TradeSignal:
    """A BUY signal from an EMA crossover."""
    return _build(TradeSignal, {
        "symbol": SYMBOL,
        "side": Side.BUY,
        "strength": 0.64,
        "strategy": "ema_cross",
        "reason": "EMA(12) crossed above EMA(26) with RSI 58",
        "cause_ids": [
            "1c9a7e52-0f3b-4d6e-9a8b-7c6d5e4f3a21",
            "9f0e1d2c-3b4a-4596-8877-665544332211",
        ],
    }, overrides)


def make_place_order(**overrides: Any) -> PlaceOrder:
    """A limit order command with an expiry."""
    return _build(PlaceOrder, {
        "order_id": "ord-20240314-000042",
        "account": ACCOUNT,
        "symbol": SYMBOL,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": Decimal("0.015"),
        "limit_price": Decimal("64000.00"),
        "signal_id": "3e2d1c0b-a987-4654-b321-0fedcba98765",
        "expires_at": T0 + timedelta(minutes=5),
        "strategy": "ema_cross",
    }, overrides)


def make_order_placed(**overrides: Any) -> OrderPlaced:
    """The order above, accepted."""
    return _build(OrderPlaced, {
        "order_id": "ord-20240314-000042",
        "account": ACCOUNT,
        "symbol": SYMBOL,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": Decimal("0.015"),
        "limit_price": Decimal("64000.00"),
        "strategy": "ema_cross",
    }, overrides)


def make_order_filled(**overrides: Any) -> OrderFilled:
    """A partial fill against a market trade, taker fee charged."""
    return _build(OrderFilled, {
        "order_id": "ord-20240314-000042",
        "account": ACCOUNT,
        "symbol": SYMBOL,
        "side": Side.BUY,
        "fill_id": "fill-000042-1",
        "fill_quantity": Decimal("0.010"),
        "fill_price": Decimal("64000.00"),
        "fee": Decimal("0.256"),
        "remaining_quantity": Decimal("0.005"),
        "source_trade_id": 2_041_337_901,
    }, overrides)


def make_order_rejected(**overrides: Any) -> OrderRejected:
    """An order refused for lack of balance."""
    return _build(OrderRejected, {
        "order_id": "ord-20240314-000043",
        "account": ACCOUNT,
        "symbol": SYMBOL,
        "reason_code": "INSUFFICIENT_BALANCE",
        "reason": "needs 960.00 USDT, 412.37 available",
    }, overrides)


def make_position_changed(**overrides: Any) -> PositionChanged:
    """The position after the fill above (a long with realised P&L from earlier trades)."""
    return _build(PositionChanged, {
        "account": ACCOUNT,
        "symbol": SYMBOL,
        "quantity": Decimal("0.025"),
        "average_price": Decimal("63987.464"),
        "realised_pnl": Decimal("-12.4175"),
        "fees_paid": Decimal("1.024"),
        "order_id": "ord-20240314-000042",
    }, overrides)


# --- system ---------------------------------------------------------------------------


def make_heartbeat(**overrides: Any) -> Heartbeat:
    """A worker's periodic heartbeat."""
    return _build(Heartbeat, {
        "component": "agent.market",
        "worker_id": "worker-1",
        "host": "ticktide-worker-1",
        "pid": 4182,
        "uptime_seconds": 3605.25,
        "events_processed": 1_204_337,
        "sequence": 361,
    }, overrides)


def make_component_status(**overrides: Any) -> ComponentStatus:
    """A component degraded by its circuit breaker."""
    return _build(ComponentStatus, {
        "component": "agent.enrichment",
        "worker_id": "worker-1",
        "status": HealthStatus.DEGRADED,
        "detail": "circuit open after 5 consecutive Claude timeouts",
    }, overrides)


def make_dead_letter(**overrides: Any) -> DeadLetter:
    """A record that failed to decode, with its original bytes."""
    return _build(DeadLetter, {
        "source_topic": "market.trades",
        "source_partition": 3,
        "source_offset": 1_882_004,
        "original_key": b"BTCUSDT",
        "original_value": b"\x01\x00\x00\x00\x2a\xff\xfe",
        "agent": "agent.market",
        "reason": "decode",
        "error_type": "BadMagicByte",
        "error_message": "first byte is 1, not the wire-format magic byte 0",
        "attempt": 1,
    }, overrides)


# --- user -----------------------------------------------------------------------------


def make_user_command(**overrides: Any) -> UserCommand:
    """A replay command with arguments."""
    return _build(UserCommand, {
        "command": "replay",
        "target": "market.trades",
        "arguments": {"from": "2024-03-14T09:00:00Z", "to": "2024-03-14T10:00:00Z"},
        "user": "alice",
    }, overrides)


ALL_FACTORIES: dict[type[Event], Callable[..., Event]] = {
    Trade: make_trade,
    BookTop: make_book_top,
    News: make_news,
    Candle: make_candle,
    IndicatorSnapshot: make_indicator_snapshot,
    Anomaly: make_anomaly,
    Enrichment: make_enrichment,
    TradeSignal: make_trade_signal,
    PlaceOrder: make_place_order,
    OrderPlaced: make_order_placed,
    OrderFilled: make_order_filled,
    OrderRejected: make_order_rejected,
    PositionChanged: make_position_changed,
    Heartbeat: make_heartbeat,
    ComponentStatus: make_component_status,
    DeadLetter: make_dead_letter,
    UserCommand: make_user_command,
}
"""Every event record class mapped to its factory (one per entry of RECORD_TYPES)."""


def make_command_acknowledged(**overrides: Any) -> CommandAcknowledged:
    """A risk-limit change, accepted (issue 5)."""
    return _build(CommandAcknowledged, {
        "account": ACCOUNT,
        "command_id": "5f1c2d3e-4b5a-4978-8c6d-1e2f3a4b5c6d",
        "command": "SetRiskLimit",
        "arguments": {"limit": "max_position", "value": "0.5"},
        "accepted": True,
        "detail": "SetRiskLimit applied",
    }, overrides)


ALL_FACTORIES[CommandAcknowledged] = make_command_acknowledged


def make_order_denied(**overrides: Any) -> OrderDenied:
    """An order refused by the max-position check."""
    return _build(OrderDenied, {
        "order_id": "ord-20240314-000043", "account": ACCOUNT, "symbol": SYMBOL,
        "reason_code": "max_position", "reason": "BTCUSDT position could reach 6 (limit 5)",
    }, overrides)


def make_order_expired(**overrides: Any) -> OrderExpired:
    """An order partly filled when its timeout ran out."""
    return _build(OrderExpired, {
        "order_id": "ord-20240314-000042", "account": ACCOUNT, "symbol": SYMBOL,
        "filled_quantity": Decimal("0.010"), "remaining_quantity": Decimal("0.005"),
        "deadline": T0 + timedelta(minutes=1),
    }, overrides)


def make_order_canceled(**overrides: Any) -> OrderCanceled:
    """An open order canceled by the kill switch."""
    return _build(OrderCanceled, {
        "order_id": "ord-20240314-000042", "account": ACCOUNT, "symbol": SYMBOL,
        "reason_code": "kill_switch", "reason": "canceled: the kill switch is on",
        "command_id": "5f1c2d3e-4b5a-4978-8c6d-1e2f3a4b5c6d", "remaining_quantity": Decimal("0.005"),
    }, overrides)


def make_mark(**overrides: Any) -> Mark:
    """BTCUSDT's trades in one 100 ms slice."""
    return _build(Mark, {
        "symbol": SYMBOL, "price": Decimal("64000.10"), "size": Decimal("0.734"), "trade_count": 12,
        "last_trade_id": 2_041_337_901, "slice_start": T0 - timedelta(microseconds=89_793),
    }, overrides)


def make_expire_orders(**overrides: Any) -> ExpireOrders:
    """A request to close the account's overdue orders."""
    return _build(ExpireOrders, {"account": ACCOUNT}, overrides)


def make_strategy_progressed(**overrides: Any) -> StrategyProgressed:
    """The strategy's progress on one symbol, for the ledger."""
    return _build(StrategyProgressed, {"account": ACCOUNT, "symbol": "BTCUSDT", "strategy": "ema_cross"}, overrides)


def make_pause_strategy(**overrides: Any) -> PauseStrategy:
    return _build(PauseStrategy, {"user": "alice", "account": ACCOUNT, "strategy": "ema_cross"}, overrides)


def make_resume_strategy(**overrides: Any) -> ResumeStrategy:
    return _build(ResumeStrategy, {"user": "alice", "account": ACCOUNT, "strategy": "ema_cross"}, overrides)


def make_set_risk_limit(**overrides: Any) -> SetRiskLimit:
    return _build(SetRiskLimit, {"user": "alice", "account": ACCOUNT, "limit": "max_position",
                                 "value": Decimal("0.5")}, overrides)


def make_engage_kill_switch(**overrides: Any) -> EngageKillSwitch:
    return _build(EngageKillSwitch, {"user": "alice", "account": ACCOUNT}, overrides)


def make_release_kill_switch(**overrides: Any) -> ReleaseKillSwitch:
    return _build(ReleaseKillSwitch, {"user": "alice", "account": ACCOUNT}, overrides)


def make_flatten_position(**overrides: Any) -> FlattenPosition:
    return _build(FlattenPosition, {"user": "alice", "account": ACCOUNT, "symbol": SYMBOL}, overrides)


ALL_FACTORIES.update({
    OrderDenied: make_order_denied, OrderExpired: make_order_expired, OrderCanceled: make_order_canceled,
    Mark: make_mark, ExpireOrders: make_expire_orders, PauseStrategy: make_pause_strategy,
    ResumeStrategy: make_resume_strategy, SetRiskLimit: make_set_risk_limit,
    EngageKillSwitch: make_engage_kill_switch, ReleaseKillSwitch: make_release_kill_switch,
    FlattenPosition: make_flatten_position, StrategyProgressed: make_strategy_progressed,
})


def sample_events() -> list[Event]:
    """One valid instance of each event type, in RECORD_TYPES order."""
    return [factory() for factory in ALL_FACTORIES.values()]
