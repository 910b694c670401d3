"""The event-time candle fold: exact against a plain batch computation, on old (2024)
timestamps, with out-of-order trades, late trades, hopping windows and re-delivery."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from itertools import islice

import pytest

from domain.candles import (
    UNITS,
    Outcome,
    SymbolCandles,
    Tick,
    apply_trade,
    candle_record,
    close_all,
    from_row,
    to_row,
)
from domain.clock import EPOCH
from domain.windows import parse_windows
from schemas.records import Trade
from streams.ingest import ParsedRow, read_trades, synthetic_trades
from tests.factories import T0
from tests.harness import DATA
from tests.reference import bar_summary, batch_ohlcv, fold_reference

SPECS = parse_windows("1s,1m,5m,5m/1m")
GRACE = 5_000_000


def tick_of(trade: Trade) -> Tick:
    """The hot-path form of a Trade, as the agent's decoder makes it."""
    return Tick(trade.symbol, trade.trade_id, (trade.trade_time - EPOCH) // timedelta(microseconds=1),
                int(trade.price.scaleb(18)), int(trade.size.scaleb(18)), trade.taker_side == "BUY")


def test_real_binance_trades_give_exact_candles() -> None:
    rows = read_trades(DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz",
                       "binance-ws")
    ticks = [tick_of(r.event) for r in rows if isinstance(r, ParsedRow)]
    expected = fold_reference(ticks, SPECS, GRACE)
    assert expected.late == []  # the recording is in order per symbol
    batch = batch_ohlcv(ticks, SPECS)
    assert {k: bar_summary(b) for k, b in expected.candles.items()} == batch
    one_minute = [k for k in expected.candles if k[1] == "1m"]
    assert {k[0] for k in one_minute} == {"BTCUSDT", "ETHUSDT"}
    assert sum(expected.candles[k].count for k in one_minute) == len(ticks)


def test_out_of_order_within_grace_is_exact_and_beyond_grace_is_late() -> None:
    feed = synthetic_trades(["BTCUSDT", "ETHUSDT", "SOLUSDT"], seed=3, start=T0, rate=200,
                            out_of_order_share=0.05)
    ticks = [tick_of(t) for t in islice(feed, 20_000)]
    expected = fold_reference(ticks, SPECS, grace_us=1_000_000)
    assert expected.late, "a 1 s grace must leave some of the feed's late trades out"
    late_ids = {(t.symbol, t.trade_id) for t in expected.late}
    on_time = [t for t in ticks if (t.symbol, t.trade_id) not in late_ids]
    assert {k: bar_summary(b) for k, b in expected.candles.items()} == batch_ohlcv(on_time, SPECS)
    # Arrival order does not matter within the grace: trades reordered inside 2 s
    # buckets (newest id first) give identical candles with a 10 s grace.
    shuffled = list(on_time)
    random.Random(1).shuffle(shuffled)
    resorted = sorted(shuffled, key=lambda t: (t.symbol, t.time_us // 2_000_000, -t.trade_id))
    wide = fold_reference(resorted, SPECS, grace_us=10_000_000)
    assert wide.late == []
    assert {k: bar_summary(b) for k, b in wide.candles.items()} == batch_ohlcv(on_time, SPECS)


def test_redelivered_offsets_are_not_applied_twice() -> None:
    state = SymbolCandles("BTCUSDT")
    tick = Tick("BTCUSDT", 1, 1_000_000, 100 * UNITS, UNITS, True)
    assert apply_trade(state, tick, SPECS, GRACE, 0, 7)[0] is Outcome.APPLIED
    assert apply_trade(state, tick, SPECS, GRACE, 0, 7)[0] is Outcome.DUPLICATE
    assert apply_trade(state, tick, SPECS, GRACE, 0, 6)[0] is Outcome.DUPLICATE
    assert state.bars["1m"][0].count == 1


def test_hopping_windows_hold_each_trade_five_times() -> None:
    state = SymbolCandles("BTCUSDT")
    apply_trade(state, Tick("BTCUSDT", 1, 7 * 60_000_000 + 5, 100 * UNITS, UNITS, False),
                SPECS, GRACE, 0, 0)
    assert sorted(state.bars["5m/1m"]) == [m * 60_000_000 for m in range(3, 8)]
    assert list(state.bars["5m"]) == [5 * 60_000_000]


def test_idle_close_then_late_trade_and_row_round_trip() -> None:
    state = SymbolCandles("ETHUSDT")
    apply_trade(state, Tick("ETHUSDT", 1, 10_000_000, 3000 * UNITS, UNITS // 2, True), SPECS, GRACE, 1, 0)
    again = from_row(to_row(state, 123))
    assert again == state
    closed = close_all(state)
    assert {c.interval for c in closed} == {"1s", "1m", "5m", "5m/1m"} and not any(state.bars.values())
    outcome, _ = apply_trade(state, Tick("ETHUSDT", 2, 10_500_000, 3001 * UNITS, UNITS, True),
                             SPECS, GRACE, 1, 1)
    assert outcome is Outcome.LATE and state.late == 1


def test_candle_record_is_exact_and_has_a_stable_id() -> None:
    state = SymbolCandles("BTCUSDT")
    for i, (price, size) in enumerate([("64000.10", "0.003"), ("64000.30", "0.001")]):
        apply_trade(state, Tick("BTCUSDT", i, 1_000 + i, int(Decimal(price) * UNITS),
                                int(Decimal(size) * UNITS), i == 0), SPECS, GRACE, 0, i)
    (minute,) = [c for c in close_all(state) if c.interval == "1m"]
    record = candle_record(minute, "test", T0)
    assert record.volume == Decimal("0.004") and record.quote_volume == Decimal("256.0006")
    assert record.vwap == Decimal("64000.15")
    assert record.open == Decimal("64000.10") and record.close == Decimal("64000.30")
    assert record.envelope.event_id == candle_record(minute, "other", T0).envelope.event_id


@pytest.mark.parametrize("text", ["1x", "5m/2m", "1m/5m", "", "1m,1m"])
def test_bad_window_specs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_windows(text)
