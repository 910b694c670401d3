"""News files (JSON lines, CSV) and synthetic headlines for market.news."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.errors import InvalidInput
from streams.ingest.news import ParsedNews, read_news, synthetic_headline
from streams.ingest.parsed_rows import RejectedRow


def test_jsonl_rows_become_news_and_bad_rows_say_why(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(
        '{"headline": "BTC  tops $64k", "source": "wire", "symbols": ["btcusdt"], "time": "2024-03-14T09:26:53Z"}\n'
        '\n'
        '{"headline": "ETH upgrade", "source": "wire", "symbols": "ETHUSDT;BTCUSDT", "time": 1710408413000,'
        ' "url": "https://example.com/eth"}\n'
        '{"headline": "", "source": "wire", "symbols": ["BTCUSDT"], "time": 1710408413}\n'
        '{"headline": "x", "source": "wire", "symbols": ["BTC-USDT!"], "time": 1710408413}\n'
        '{"headline": "x", "source": "wire", "symbols": ["BTCUSDT"], "time": "yesterday"}\n'
        '{"headline": "x", "source": "wire", "symbols": ["BTCUSDT"], "time": 1, "score": 5}\n'
        'not json\n')
    rows = list(read_news(path, "jsonl"))
    good = [r for r in rows if isinstance(r, ParsedNews)]
    bad = {r.line: r.reason for r in rows if isinstance(r, RejectedRow)}
    assert [n.event.headline for n in good] == ["BTC tops $64k", "ETH upgrade"]
    assert good[0].event.symbols == ["BTCUSDT"] and good[1].event.symbols == ["ETHUSDT", "BTCUSDT"]
    assert good[1].event.published_time == datetime(2024, 3, 14, 9, 26, 53, tzinfo=UTC)
    assert good[0].event.envelope.event_time == good[0].event.published_time
    assert "headline" in bad[4] and "symbols" in bad[5] and "time" in bad[6]
    assert "score" in bad[7] and "JSON" in bad[8]
    again = [r.event.envelope.event_id for r in read_news(path, "jsonl") if isinstance(r, ParsedNews)]
    assert again == [n.event.envelope.event_id for n in good]  # same file, same ids


def test_csv_needs_its_header_and_reads_quoted_symbol_lists(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text('headline,source,symbols,time\n'
                    '"SEC, again, delays ETF",wire,"BTCUSDT,ETHUSDT",2024-03-14T09:00:00Z\n')
    (row,) = read_news(path, "csv")
    assert isinstance(row, ParsedNews) and row.event.headline == "SEC, again, delays ETF"
    assert row.event.symbols == ["BTCUSDT", "ETHUSDT"]
    headless = tmp_path / "bad.csv"
    headless.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="header"):
        list(read_news(headless, "csv"))
    with pytest.raises(InvalidInput, match="format"):
        list(read_news(path, "xml"))


def test_synthetic_headlines_name_one_of_the_symbols() -> None:
    rng = random.Random(4)
    news = [synthetic_headline(["BTCUSDT", "ETHUSDT"], datetime.now(UTC), rng) for _ in range(20)]
    assert {n.symbols[0] for n in news} == {"BTCUSDT", "ETHUSDT"}
    assert all(n.source == "synthetic" and n.headline for n in news)
