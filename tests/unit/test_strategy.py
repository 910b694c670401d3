"""Strategies with plain values: the default EMA cross, its regime and risk-flag filter,
idempotence over re-delivered snapshots, deterministic signal and order ids."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.strategy.strategies import (
    ENRICHMENT_HOLD,
    STRATEGIES,
    SymbolContext,
    observe_enrichment,
    observe_snapshot,
    signal_record,
    strategy_named,
)
from domain.trading.orders import account_of_order, order_for_signal
from schemas.records import IndicatorSnapshot, Regime, Side
from streams.errors import ConfigError
from streams.settings import load_settings
from tests.factories import T0, make_enrichment, make_indicator_snapshot


def snapshots(diffs: list[float]) -> list[IndicatorSnapshot]:
    """One snapshot per minute whose fast - slow EMA is each diff."""
    return [make_indicator_snapshot(ema_fast=100.0 + d, ema_slow=100.0, close=Decimal(100),
                                    candle_end=T0 + timedelta(minutes=i))
            for i, d in enumerate(diffs)]


def run(diffs: list[float], context: SymbolContext | None = None, name: str = "ema_cross") -> list[Side | None]:
    context = context or SymbolContext("BTCUSDT")
    wishes = [observe_snapshot(context, s, strategy_named(name)) for s in snapshots(diffs)]
    return [w.side if w else None for w in wishes]


def test_ema_cross_buys_on_the_upward_cross_and_sells_on_the_downward_one() -> None:
    assert run([-1, -0.5, 0.5, 1, -0.2, -1]) == [None, None, Side.BUY, None, Side.SELL, None]


def test_the_default_stays_out_of_volatile_regimes_and_flagged_risks_the_unfiltered_one_does_not() -> None:
    volatile = SymbolContext("BTCUSDT")
    observe_enrichment(volatile, make_enrichment(regime=Regime.VOLATILE, risk_flags=[]))
    assert run([-1, 1], volatile) == [None, None]
    flagged = SymbolContext("BTCUSDT")
    observe_enrichment(flagged, make_enrichment(regime=Regime.TRENDING, risk_flags=["price_gap"]))
    assert run([-1, 1], flagged) == [None, None]
    informational = SymbolContext("BTCUSDT")
    observe_enrichment(informational, make_enrichment(regime=Regime.RANGING, risk_flags=["oversold", "thin_data"]))
    assert run([-1, 1], informational) == [None, Side.BUY]
    calm = SymbolContext("BTCUSDT")
    observe_enrichment(calm, make_enrichment(regime=Regime.TRENDING, risk_flags=[]))
    assert run([-1, 1], calm) == [None, Side.BUY]
    unfiltered = SymbolContext("BTCUSDT")
    observe_enrichment(unfiltered, make_enrichment(regime=Regime.VOLATILE))
    assert run([-1, 1], unfiltered, "ema_cross_unfiltered") == [None, Side.BUY]


def test_an_old_enrichment_stops_filtering_after_a_few_snapshots() -> None:
    stale = SymbolContext("BTCUSDT")
    observe_enrichment(stale, make_enrichment(regime=Regime.VOLATILE, risk_flags=["high_volatility"]))
    diffs = [-1] * ENRICHMENT_HOLD + [1]  # the cross comes ENRICHMENT_HOLD snapshots later
    assert run(diffs, stale)[-1] == Side.BUY


def test_a_redelivered_snapshot_does_not_signal_again() -> None:
    context = SymbolContext("BTCUSDT")
    down, up = snapshots([-1, 1])
    strategy = strategy_named("ema_cross")
    observe_snapshot(context, down, strategy)
    assert observe_snapshot(context, up, strategy) is not None
    assert observe_snapshot(context, up, strategy) is None
    assert observe_snapshot(context, down, strategy) is None


def test_signal_and_order_ids_are_deterministic_and_carry_lineage() -> None:
    context = SymbolContext("BTCUSDT")
    down, up = snapshots([-1, 1])
    strategy = strategy_named("ema_cross")
    observe_snapshot(context, down, strategy)
    wish = observe_snapshot(context, up, strategy)
    assert wish is not None and 0 < wish.strength <= 1
    first = signal_record(up, wish, "ema_cross", "test", T0)
    again = signal_record(up, wish, "ema_cross", "test", T0 + timedelta(hours=1))
    assert first.envelope.event_id == again.envelope.event_id
    assert first.cause_ids[:3] == [up.envelope.event_id, up.candle_id, down.envelope.event_id]
    order = order_for_signal(first, "paper-1", Decimal("0.01"), T0)
    assert order.signal_id == first.envelope.event_id and order.envelope.producer == "strategy.ema_cross"
    assert account_of_order(order.order_id) == "paper-1"
    assert order.order_id == order_for_signal(again, "paper-1", Decimal("0.01"), T0).order_id


def test_an_unknown_strategy_is_a_clear_setting_error() -> None:
    with pytest.raises(ConfigError, match=r"trading_strategy.*unknown strategy 'nope'.*ema_cross"):
        load_settings(trading_strategy="nope")
    assert set(STRATEGIES) >= {"ema_cross", "ema_cross_unfiltered"}
