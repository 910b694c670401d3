"""The event-time candle fold: exact against a plain batch computation, on old (2024)
timestamps, with out-of-order trades, late trades, hopping windows and re-delivery."""

from __future__ import annotations

import random
from dataclasses import astuple
from datetime import timedelta
from decimal import Decimal
from itertools import islice

import pytest

from domain.clock import EPOCH
from domain.fold import Position, step
from domain.market.bars import Bar, Tick
from domain.market.candle_rows import from_row, to_row
from domain.market.candles import UNITS, CandleFold, Late, SymbolCandles, candle_record
from domain.market.windows import parse_windows
from schemas.records import Trade
from streams.ingest import ParsedRow, read_trades, synthetic_trades
from tests.factories import T0
from tests.harness import DATA
from tests.reference import Expected, bar_summary, batch_ohlcv, fold_reference

SPECS = parse_windows("1s,1m,5m,5m/1m")
GRACE = 5_000_000
FOLD = CandleFold(SPECS, GRACE)


def run_fold(ticks: list[Tick], fold: CandleFold = FOLD, close_at_end: bool = True) -> Expected:
    """The fold over ``ticks`` as the agent drives it; each window's final candle is emitted once."""
    states: dict[str, SymbolCandles] = {}
    candles: dict[tuple[str, str, int], Bar] = {}
    late: list[Tick] = []
    for offset, tick in enumerate(ticks):
        state = states.setdefault(tick.symbol, SymbolCandles(tick.symbol))
        _, outputs = step(fold.evolve, state, tick, 0, offset)
        for output in outputs:
            if isinstance(output, Late):
                late.append(output.tick)
                continue
            key = (output.symbol, output.interval, output.bar.start_us)
            assert key not in candles, f"{key} emitted twice"
            candles[key] = output.bar
    if close_at_end:
        for state in states.values():
            for closed in fold.close_all(state):
                candles[(closed.symbol, closed.interval, closed.bar.start_us)] = closed.bar
    return Expected(candles, late)


def same_as_reference(ticks: list[Tick], fold: CandleFold = FOLD) -> Expected:
    """The fold's candles and late trades, checked equal to the plain reference's."""
    ours, expected = run_fold(ticks, fold), fold_reference(ticks, fold.specs, fold.grace_us)
    assert ours.late == expected.late
    assert {k: bar_summary(b) for k, b in ours.candles.items()} == \
        {k: bar_summary(b) for k, b in expected.candles.items()}
    assert ours.candles == expected.candles  # every field, window bounds included
    return ours


def tick_of(trade: Trade) -> Tick:
    """The hot-path form of a Trade, as the agent's decoder makes it."""
    return Tick(trade.symbol, trade.trade_id, (trade.trade_time - EPOCH) // timedelta(microseconds=1),
                int(trade.price.scaleb(18)), int(trade.size.scaleb(18)), trade.taker_side == "BUY")


def test_real_binance_trades_give_exact_candles() -> None:
    rows = read_trades(DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz",
                       "binance-ws")
    ticks = [tick_of(r.event) for r in rows if isinstance(r, ParsedRow)]
    expected = same_as_reference(ticks)
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
    expected = same_as_reference(ticks, CandleFold(SPECS, 1_000_000))
    assert expected.late, "a 1 s grace must leave some of the feed's late trades out"
    late_ids = {(t.symbol, t.trade_id) for t in expected.late}
    on_time = [t for t in ticks if (t.symbol, t.trade_id) not in late_ids]
    assert {k: bar_summary(b) for k, b in expected.candles.items()} == batch_ohlcv(on_time, SPECS)
    # Arrival order does not matter within the grace: trades reordered inside 2 s
    # buckets (newest id first) give identical candles with a 10 s grace.
    shuffled = list(on_time)
    random.Random(1).shuffle(shuffled)
    resorted = sorted(shuffled, key=lambda t: (t.symbol, t.time_us // 2_000_000, -t.trade_id))
    wide = same_as_reference(resorted, CandleFold(SPECS, 10_000_000))
    assert wide.late == []
    assert {k: bar_summary(b) for k, b in wide.candles.items()} == batch_ohlcv(on_time, SPECS)


def test_redelivered_offsets_are_not_applied_twice() -> None:
    state = SymbolCandles("BTCUSDT")
    tick = Tick("BTCUSDT", 1, 1_000_000, 100 * UNITS, UNITS, True)
    step(FOLD.evolve, state, tick, 0, 7)
    step(FOLD.evolve, state, tick, 0, 7)
    step(FOLD.evolve, state, tick, 0, 6)
    assert state.applied == Position(0, 7)
    assert [bar.count for bar in FOLD.open_bars(state, "1m")] == [1]


def test_hopping_windows_share_panes() -> None:
    state = SymbolCandles("BTCUSDT")
    FOLD.evolve(state, Tick("BTCUSDT", 1, 7 * 60_000_000 + 5, 100 * UNITS, UNITS, False))
    assert [bar.start_us for bar in FOLD.open_bars(state, "5m/1m")] == [m * 60_000_000 for m in range(3, 8)]
    assert [bar.start_us for bar in FOLD.open_bars(state, "5m")] == [5 * 60_000_000]
    assert sum(len(panes) for panes in state.panes.values()) == 2  # a 1s and a 1m pane, not 8 bars


def test_five_minute_windows_are_made_of_the_minute_panes_the_hopping_windows_keep() -> None:
    """The 5m/1m windows keep each 1m pane for five minutes, so the 5m windows are made of
    them: no 5m pane to update per trade, and a 5m candle still holds its window's trades."""
    state = SymbolCandles("BTCUSDT")
    for minute in range(6):
        FOLD.evolve(state, Tick("BTCUSDT", minute, minute * 60_000_000 + 7, (100 + minute % 5) * UNITS, UNITS, True))
    assert sorted(state.panes) == [1_000_000, 60_000_000]
    (five, _) = [c.bar for c in FOLD.close_all(state) if c.interval == "5m"]
    assert (five.start_us, five.count, five.open, five.close) == (0, 5, 100 * UNITS, 104 * UNITS)
    assert (five.high, five.low, five.volume) == (104 * UNITS, 100 * UNITS, 5 * UNITS)


def test_a_row_with_five_minute_panes_loads_whole_from_its_minute_panes() -> None:
    """A row written when the 5m windows had panes of their own: those are left out, and its
    open 5m window is whole, from the 1m panes the row keeps for the 5m/1m windows."""
    state = SymbolCandles("ETHUSDT")
    for minute in range(3):
        FOLD.evolve(state, Tick("ETHUSDT", minute, minute * 60_000_000 + 9, 3000 * UNITS, UNITS, minute == 1))
    (open_five,) = FOLD.open_bars(state, "5m")
    row = to_row(state, 1)
    old = {**row, "panes": {**row["panes"], "300000000": [",".join(map(str, astuple(open_five)))]}}
    loaded = from_row(old, FOLD)
    assert sorted(loaded.panes) == [1_000_000, 60_000_000]
    assert FOLD.open_bars(loaded, "5m") == [open_five] and open_five.count == 3


def test_idle_close_then_late_trade_and_row_round_trip() -> None:
    state = SymbolCandles("ETHUSDT")
    step(FOLD.evolve, state, Tick("ETHUSDT", 1, 10_000_000, 3000 * UNITS, UNITS // 2, True), 1, 0)
    again = from_row(to_row(state, 123), FOLD)
    assert again == state
    closed = FOLD.close_all(state)
    assert {c.interval for c in closed} == {"1s", "1m", "5m", "5m/1m"} and not any(state.panes.values())
    _, outputs = FOLD.evolve(state, Tick("ETHUSDT", 2, 10_500_000, 3001 * UNITS, UNITS, True))
    assert [type(o) for o in outputs] == [Late] and state.late == 1


def test_a_quiet_symbol_closes_only_the_windows_that_ended_on_its_clock() -> None:
    """Live, an illiquid symbol's trade 30 s after the last one still counts in its minute:
    idle close runs the symbol's clock on with wall time, it does not close every window."""
    state = SymbolCandles("ETHUSDT")
    FOLD.evolve(state, Tick("ETHUSDT", 1, 70_000_000, 3000 * UNITS, UNITS, True))  # 00:01:10
    closed = FOLD.close_quiet(state, 15_000_000)  # 15 s quiet: its clock is at 00:01:25 (minus grace)
    assert [(c.interval, c.bar.start_us) for c in closed] == [("1s", 70_000_000)]
    _, outputs = FOLD.evolve(state, Tick("ETHUSDT", 2, 100_000_000, 3001 * UNITS, UNITS, False))  # 00:01:40
    assert not any(isinstance(o, Late) for o in outputs) and state.late == 0
    later = FOLD.close_quiet(state, 60_000_000)  # a minute more of quiet: 00:02:40 - grace
    minute = [c.bar for c in later if c.interval == "1m"]
    assert [(b.start_us, b.count, b.close) for b in minute] == [(60_000_000, 2, 3001 * UNITS)]
    assert "5m" not in {c.interval for c in later}  # 00:05:00 has not passed on its clock
    assert FOLD.close_quiet(state, 60_000_000) == []  # nothing more has ended


def test_a_quiet_symbol_is_looked_at_again_only_when_a_window_of_it_can_end() -> None:
    """Once a quiet symbol's second has closed, nothing of it ends before its minute: the idle
    close, which looks at thousands of such symbols every second, passes over it. Its clock
    still runs on as a trade at that time would move it: an older trade is late."""
    state = SymbolCandles("ETHUSDT")
    FOLD.evolve(state, Tick("ETHUSDT", 1, 70_000_000, 3000 * UNITS, UNITS, True))  # 00:01:10
    assert [c.interval for c in FOLD.close_quiet(state, 15_000_000)] == ["1s"]
    assert state.next_close_us == 120_000_000  # 00:02:00, when its 1m pane ends
    assert FOLD.close_quiet(state, 30_000_000) == [] and state.boundary_us == 100_000_000 - GRACE
    _, outputs = FOLD.evolve(state, Tick("ETHUSDT", 2, 90_000_000, 3001 * UNITS, UNITS, False))  # 00:01:30
    assert [type(o) for o in outputs] == [Late]


def test_a_row_written_before_panes_still_loads() -> None:
    state = SymbolCandles("ETHUSDT")
    for i in range(3):
        FOLD.evolve(state, Tick("ETHUSDT", i, 10_000_000 + i * 400_000, 3000 * UNITS, UNITS, True))
    row = to_row(state, 1)
    old = {**{k: v for k, v in row.items() if k != "panes"},
           "bars": {spec.name: [",".join(map(str, astuple(bar))) for bar in FOLD.open_bars(state, spec.name)]
                    for spec in SPECS}}
    assert from_row(old, FOLD) == from_row(row, FOLD)


def test_a_row_of_windows_no_longer_configured_loads_without_them() -> None:
    """Restarted with fewer windows (5m dropped), a symbol's row keeps its 1s and 1m panes
    and leaves the 5m panes out: nothing would ever close or drop them, or emit them."""
    state = SymbolCandles("ETHUSDT")
    FOLD.evolve(state, Tick("ETHUSDT", 1, 10_000_000, 3000 * UNITS, UNITS, True))
    fewer = CandleFold(parse_windows("1s,1m"), GRACE)
    loaded = from_row(to_row(state, 1), fewer)
    assert sorted(loaded.panes) == [1_000_000, 60_000_000]
    closed = fewer.close_all(loaded)
    assert [c.interval for c in closed] == ["1s", "1m"] and not any(loaded.panes.values())

def test_candle_record_is_exact_and_has_a_stable_id() -> None:
    state = SymbolCandles("BTCUSDT")
    for i, (price, size) in enumerate([("64000.10", "0.003"), ("64000.30", "0.001")]):
        FOLD.evolve(state, Tick("BTCUSDT", i, 1_000 + i, int(Decimal(price) * UNITS), int(Decimal(size) * UNITS),
                                i == 0))
    (minute,) = [c for c in FOLD.close_all(state) if c.interval == "1m"]
    record = candle_record(minute, "test", T0)
    assert record.volume == Decimal("0.004") and record.quote_volume == Decimal("256.0006")
    assert record.vwap == Decimal("64000.15")
    assert record.open == Decimal("64000.10") and record.close == Decimal("64000.30")
    assert record.envelope.event_id == candle_record(minute, "other", T0).envelope.event_id
    # Candle v2, Binance's kline fields: only the first trade's taker bought
    assert record.buy_volume == Decimal("0.003") and record.taker_buy_quote_volume == Decimal("192.0003")
    assert record.close_time == record.window_end - timedelta(milliseconds=1)


def test_a_bar_from_a_row_older_than_v2_says_its_taker_buy_quote_is_unknown() -> None:
    """A pane checkpointed before Candle v2 has no taker buy quote: its candle says null (not a
    wrong sum), also after more trades are folded into it; a merged window with it too."""
    state = SymbolCandles("ETHUSDT")
    FOLD.evolve(state, Tick("ETHUSDT", 1, 10_000_000, 3000 * UNITS, UNITS, True))
    row = to_row(state, 1)
    row["panes"] = {step: [text.rsplit(",", 1)[0] for text in texts] for step, texts in row["panes"].items()}
    old = from_row(row, FOLD)
    FOLD.evolve(old, Tick("ETHUSDT", 2, 10_100_000, 3001 * UNITS, UNITS, True))
    closed = FOLD.close_all(old)
    records = [candle_record(c, "test", T0) for c in closed]
    assert {r.interval for r in records} == {"1s", "1m", "5m", "5m/1m"}
    assert all(r.taker_buy_quote_volume is None and r.trade_count == 2 for r in records)
    assert all(r.buy_volume == Decimal(2) for r in records)


@pytest.mark.parametrize("text", ["1x", "5m/2m", "1m/5m", "", "1m,1m"])
def test_bad_window_specs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_windows(text)
