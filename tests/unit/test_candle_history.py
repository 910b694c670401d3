"""The candle history ring (tables/candles.py): blocks of final candles, written a
checkpoint at a time, read back newest N."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.market.bars import Bar
from domain.market.candle_rows import bar_text
from domain.market.windows import WindowSpec, parse_window
from tables.candles import BLOCK, history_rows, recent_history, ring_blocks

MINUTE = parse_window("1m")
US = 60_000_000


def bar(minute: int, close: int) -> Bar:
    start = minute * US
    return Bar(start, start + US, start, 1, close, start, 1, close, close, close, count=1)


def final(minute: int, close: int) -> tuple[WindowSpec, int, str]:
    """A final 1m candle as the writer is given it: (window family, start, bar text)."""
    return MINUTE, minute * US, bar_text(bar(minute, close))


def ring(minutes: dict[int, int], keep: int, rows: dict[str, str] | None = None, per_checkpoint: int = 1,
         symbol: str = "BTCUSDT") -> dict[str, str]:
    """What the writer leaves: the candles in time order, ``per_checkpoint`` at a time."""
    rows = {} if rows is None else rows
    candles = sorted(minutes.items())
    for at in range(0, len(candles), per_checkpoint):
        finals = [final(minute, close) for minute, close in candles[at:at + per_checkpoint]]
        rows.update(history_rows(rows.get, symbol, finals, keep))
    return rows


def closes(bars: list[Bar]) -> list[int]:
    return [bar.close for bar in bars]


def test_the_newest_candles_come_back_oldest_first_with_gaps_skipped() -> None:
    rows = ring({10: 100, 11: 101, 13: 103, 14: 104}, keep=8)  # no trade in minute 12
    assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, 14 * US + 5, keep=8, limit=3)) == [101, 103, 104]
    assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, 14 * US + 5, keep=8, limit=100)) == [100, 101, 103, 104]


def test_a_lap_of_the_ring_drops_the_oldest_and_never_shows_a_stale_slot() -> None:
    keep = 20
    last = BLOCK * ring_blocks(keep) + 5  # the ring has gone round once
    rows = ring({minute: 1000 + minute for minute in range(last + 1)}, keep=keep)
    assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, last * US, keep=keep, limit=100)) == [
        1000 + minute for minute in range(last - keep + 1, last + 1)]
    # the next minute has not closed: its block's slot still holds a lap before, never shown as it
    newer = BLOCK * ring_blocks(keep) * 2
    assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, newer * US, keep=keep, limit=100)) == []


def test_a_re_emitted_candle_replaces_its_copy_and_other_symbols_stay_apart() -> None:
    rows = ring({5: 50, 6: 60}, keep=8)
    ring({6: 61}, keep=8, rows=rows)  # minute 6 final again (after a re-fold), corrected
    assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, 6 * US, keep=8, limit=10)) == [50, 61]
    assert recent_history(rows.get, "ETHUSDT", MINUTE, 6 * US, keep=8, limit=10) == []


def test_a_checkpoint_writes_one_row_per_block_not_one_per_candle() -> None:
    finals = [final(minute, minute) for minute in range(BLOCK * 3, BLOCK * 3 + 10)]
    assert len(history_rows(dict[str, str]().get, "BTCUSDT", finals, keep=500)) == 1


def test_a_malformed_row_is_passed_over_then_replaced() -> None:
    """Whoever can write to the changelog can put anything in a row: it never stops the
    history being read or written."""
    rows = ring({5: 50, 6: 60}, keep=8)
    key = next(iter(rows))
    other_minute = f"{6 * US},{7 * US}"  # a bar's start and end, then no bar
    for junk in ("", "x;y", "5,not,a,bar", ";;", 42, {"a": 1}, None, f"{other_minute},not,a,bar",
                 f"{other_minute}" + ",1" * 30, f"{6 * US},{99 * US}" + ",1" * 16):
        rows[key] = junk  # type: ignore[assignment]
        assert recent_history(rows.get, "BTCUSDT", MINUTE, 7 * US, keep=8, limit=10) == []
        ring({7: 70}, keep=8, rows=rows)
        assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, 7 * US, keep=8, limit=10)) == [70]


@settings(max_examples=300, deadline=None)
@given(st.sets(st.integers(0, 400), max_size=120), st.integers(1, 60), st.integers(1, 40), st.randoms())
def test_any_checkpointing_reads_back_the_newest_keep_candles(minutes: set[int], keep: int, per_checkpoint: int,
                                                              order: random.Random) -> None:
    """However the candles are split into checkpoints (each in time order, as the fold closes
    them, some re-emitted), the history holds the newest ``keep`` windows' candles."""
    closed = {minute: 7 * minute for minute in minutes}
    rows = ring(closed, keep, per_checkpoint=per_checkpoint)
    for minute in order.sample(sorted(minutes), min(3, len(minutes))):  # re-emitted, the same
        rows.update(history_rows(rows.get, "BTCUSDT", [final(minute, closed[minute])], keep))
    newest = max(minutes, default=0)
    expected = [closed[m] for m in sorted(minutes) if m > newest - keep]
    assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, newest * US, keep, limit=keep)) == expected
    assert closes(recent_history(rows.get, "BTCUSDT", MINUTE, newest * US, keep, limit=2)) == expected[-2:]
