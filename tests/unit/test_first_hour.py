"""What a newcomer meets first: a file given with the wrong --format is one clear error
naming the right one; trades behind their symbol's watermark are counted before they are
sent, with the replay that shows their candles; counts read right."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streams.cli.safe_text import counted
from streams.errors import InvalidInput
from streams.ingest import guess_format, read_trades
from streams.ingest.news import read_news
from streams.tools.lateness import LateCount
from tests.harness import DATA

BTC_CSV = DATA / "binance_usdm_BTCUSDT_20240718-20240719.trades.csv.gz"
WS = DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz"
SECOND = 1_000_000


@pytest.mark.parametrize(("path", "given", "hint"), [
    (BTC_CSV, "jsonl", "pass --format binance-trades --symbol SYMBOL"),
    (WS, "jsonl", "pass --format binance-ws"),
    (WS, "binance-trades", "pass --format binance-ws"),
])
def test_a_file_of_another_format_is_one_error_naming_the_format_to_pass(path: Path, given: str, hint: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_trades(path, given, symbol="BTCUSDT" if given == "binance-trades" else None)
    assert hint in str(caught.value) and "\n" not in str(caught.value)


def test_the_format_guess_follows_the_first_line(tmp_path: Path) -> None:
    assert guess_format('{"stream":"btcusdt@trade","data":{"e":"trade"}}') == "binance-ws"
    assert guess_format('{"symbol": "BTCUSDT", "price": "1", "envelope": null}') == "jsonl"
    assert guess_format("5182005737,63943.90,0.003,191.83170000,1721347022956,True") == "binance-trades"
    assert guess_format("id,price,qty,quote_qty,time,is_buyer_maker") == "binance-trades"
    assert guess_format("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
                        "is_buyer_maker") == "binance-aggtrades"
    assert guess_format("26129,0.01633102,4.70443515,27781,27781,1498793709153,True") == "binance-aggtrades"
    for unknown in ("", "garbage", "\x00\x01", "a,b"):
        assert guess_format(unknown) is None
    # a right format with a bad first row is left to the row checks (line number and reason)
    odd = tmp_path / "odd.csv"
    odd.write_text("2,abc,0.01,1,1721347200001,false\n1,64000.1,0.01,640.001,1721347200000,true\n")
    rows = list(read_trades(odd, "binance-trades", symbol="BTCUSDT"))
    assert len(rows) == 2


def test_an_empty_or_binary_file_is_not_guessed_into_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert list(read_trades(empty, "jsonl")) == []
    binary = tmp_path / "noise.jsonl.gz"
    with gzip.open(binary, "wb") as out:
        out.write(bytes(range(256)) * 4)
    assert all(not hasattr(row, "event") for row in read_trades(binary, "jsonl"))  # rejected row by row


def test_trades_behind_the_watermark_are_counted_and_the_replay_named() -> None:
    now = 1_790_000_000 * SECOND
    count = LateCount({"BTCUSDT": now}, grace_us=5 * SECOND)
    recorded = 1_721_347_022 * SECOND
    for i in range(3):
        count.add("BTCUSDT", recorded + i * SECOND)
    count.add("BTCUSDT", now - 4 * SECOND)  # within the grace: not late
    count.add("ETHUSDT", recorded)  # no watermark yet: it starts one
    count.add("ETHUSDT", recorded - 10 * SECOND)  # behind the one the file itself set
    assert count.late_total == 4 and count.late == {"BTCUSDT": 3, "ETHUSDT": 1}
    lines = count.warning("market.trades", "rec.jsonl.gz", "binance-ws")
    assert lines[0].startswith("warning: 4 of 6 trades are more than the 5 s grace behind")
    assert ("ticktide replay --topic market.trades --from 2024-07-18T23:56:52Z "
            "--to 2024-07-18T23:57:04.000001Z --into rec-202407182356") in lines[2]
    assert "ticktide dev --feed rec.jsonl.gz --format binance-ws" in lines[3]
    on_time = LateCount({"BTCUSDT": now}, grace_us=5 * SECOND)
    on_time.add("BTCUSDT", now + SECOND)
    assert on_time.warning("market.trades", "f", "jsonl") == []


def test_counts_read_right() -> None:
    assert counted(1, "partition") == "1 partition"
    assert counted(4, "partition") == "4 partitions"
    assert counted(0, "dead letter") == "0 dead letters"


def test_a_news_file_of_the_other_format_is_one_error(tmp_path: Path) -> None:
    headlines = tmp_path / "news.csv"
    headlines.write_text("headline,source,symbols,time\nBTC up,wire,BTCUSDT,2024-07-19T00:00:00Z\n")
    with pytest.raises(InvalidInput, match="looks like CSV, not --format jsonl: pass --format csv"):
        list(read_news(headlines, "jsonl"))
    assert [row.line for row in read_news(headlines, "csv")] == [2]  # type: ignore[union-attr]
