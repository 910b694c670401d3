"""The candle history ring (tables/candles.py): one row per final candle, read back newest N."""

from __future__ import annotations

from domain.bars import Bar
from domain.candle_rows import bar_text
from domain.windows import parse_window
from tables import names
from tables.candles import history_slot, recent_history

MINUTE = parse_window("1m")
US = 60_000_000


def bar(minute: int, close: int) -> Bar:
    start = minute * US
    return Bar(start, start + US, start, 1, close, start, 1, close, close, close, count=1)


def ring(minutes: dict[int, int], keep: int) -> dict[str, str]:
    """What the writer leaves: each candle in its slot, later laps overwriting earlier ones."""
    rows: dict[str, str] = {}
    for minute, close in sorted(minutes.items()):
        rows[names.history_key("BTCUSDT", "1m", history_slot(minute * US, MINUTE, keep))] = bar_text(bar(minute, close))
    return rows


def closes(texts: list[str]) -> list[int]:
    return [int(text.split(",")[4]) for text in texts]


def test_the_newest_candles_come_back_oldest_first_with_gaps_skipped() -> None:
    rows = ring({10: 100, 11: 101, 13: 103, 14: 104}, keep=8)  # no trade in minute 12
    assert closes(recent_history(rows, "BTCUSDT", MINUTE, 14 * US + 5, keep=8, limit=3)) == [101, 103, 104]
    assert closes(recent_history(rows, "BTCUSDT", MINUTE, 14 * US + 5, keep=8, limit=100)) == [100, 101, 103, 104]


def test_a_lap_of_the_ring_drops_the_oldest_and_never_shows_a_stale_slot() -> None:
    rows = ring({minute: 1000 + minute for minute in range(20)}, keep=8)
    assert closes(recent_history(rows, "BTCUSDT", MINUTE, 19 * US, keep=8, limit=100)) == [1012 + n for n in range(8)]
    # minute 20 has not closed: its slot still holds minute 12, which is not shown as minute 20
    assert closes(recent_history(rows, "BTCUSDT", MINUTE, 20 * US, keep=8, limit=100)) == [1013 + n for n in range(7)]


def test_a_re_emitted_candle_replaces_its_copy_and_other_symbols_stay_apart() -> None:
    rows = ring({5: 50, 6: 60}, keep=8)
    rows.update(ring({6: 61}, keep=8))  # minute 6 final again (after a re-fold), corrected
    assert closes(recent_history(rows, "BTCUSDT", MINUTE, 6 * US, keep=8, limit=10)) == [50, 61]
    assert recent_history(rows, "ETHUSDT", MINUTE, 6 * US, keep=8, limit=10) == []
