"""Reading trade files for `ticktide produce market.trades`: real recordings and bad rows."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.records import Side, Trade
from streams.errors import InvalidInput
from streams.ingest import ParsedRow, RejectedRow, Row, read_trades, trade_problems
from streams.kafka.json_form import event_to_json
from tests.factories import make_trade

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BTC_CSV = DATA / "binance_usdm_BTCUSDT_20240718-20240719.trades.csv.gz"
ETH_CSV = DATA / "binance_usdm_ETHUSDT_20240718-20240719.trades.csv.gz"
WS_JSONL = DATA / "binance_usdm_BTCUSDT-ETHUSDT_20240718-20240719.trades.jsonl.gz"

T_MS = 1721347200000  # 2024-07-19 00:00:00 UTC
T = datetime(2024, 7, 19, tzinfo=UTC)


def _write(tmp_path: Path, text: str, name: str = "trades.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def _read(path: Path, fmt: str = "binance-trades", symbol: str | None = "BTCUSDT") -> list[Row]:
    return list(read_trades(path, fmt, symbol=symbol))


def _trades(rows: list[Row]) -> list[Trade]:
    assert [r for r in rows if isinstance(r, RejectedRow)] == []
    return [r.event for r in rows if isinstance(r, ParsedRow)]


def _rejected(rows: list[Row]) -> list[RejectedRow]:
    return [r for r in rows if isinstance(r, RejectedRow)]


def _ws(**data: object) -> str:
    message = {"e": "trade", "E": T_MS + 1, "T": T_MS, "s": "BTCUSDT", "t": 7,
               "p": "64000.1", "q": "0.01", "X": "MARKET", "m": True, **data}
    return json.dumps({"stream": "btcusdt@trade", "data": message})


# --- the recorded Binance files -------------------------------------------------------


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[Trade]]:
    """Both sources parsed once: 'csv:SYMBOL' from the CSVs, 'ws:SYMBOL' from the ws file."""
    parsed: dict[str, list[Trade]] = defaultdict(list)
    for path, symbol in ((BTC_CSV, "BTCUSDT"), (ETH_CSV, "ETHUSDT")):
        parsed[f"csv:{symbol}"] = _trades(_read(path, "binance-trades", symbol))
    for trade in _trades(_read(WS_JSONL, "binance-ws", None)):
        parsed[f"ws:{trade.symbol}"].append(trade)
    return dict(parsed)


def test_recorded_csv_and_ws_files_have_the_same_trades_per_symbol(
        recorded: dict[str, list[Trade]]) -> None:
    counts = {key: len(trades) for key, trades in recorded.items()}
    assert counts == {"csv:BTCUSDT": 10701, "csv:ETHUSDT": 13655,
                      "ws:BTCUSDT": 10701, "ws:ETHUSDT": 13655}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        csv_ids = [t.trade_id for t in recorded[f"csv:{symbol}"]]
        assert csv_ids == [t.trade_id for t in recorded[f"ws:{symbol}"]]
        assert csv_ids == list(range(csv_ids[0], csv_ids[0] + len(csv_ids)))  # no gaps


def test_recorded_sources_agree_exactly_for_each_trade_id(
        recorded: dict[str, list[Trade]]) -> None:
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for from_csv, from_ws in zip(recorded[f"csv:{symbol}"], recorded[f"ws:{symbol}"],
                                     strict=True):
            assert str(from_csv.price) == str(from_ws.price)  # "63943.90" stays "63943.90"
            assert (from_csv.size, from_csv.taker_side, from_csv.trade_time) == \
                (from_ws.size, from_ws.taker_side, from_ws.trade_time)
            assert from_csv.symbol == from_ws.symbol == symbol


def test_recorded_first_trade_is_read_as_binance_sent_it(recorded: dict[str, list[Trade]]) -> None:
    # 5182005737,63943.90,0.003,191.83170000,1721347022956,True  (buyer was maker)
    first = recorded["csv:BTCUSDT"][0]
    assert (first.trade_id, first.price, first.size) == (5182005737, Decimal("63943.90"),
                                                        Decimal("0.003"))
    assert first.taker_side is Side.SELL
    assert first.trade_time == datetime(2024, 7, 18, 23, 57, 2, 956000, tzinfo=UTC)
    assert first.envelope.event_time == first.trade_time
    assert first.envelope.producer == "cli.produce" and first.venue == "binance"


def test_recorded_trade_times_never_go_back_and_csv_has_no_trade_type(
        recorded: dict[str, list[Trade]]) -> None:
    for key, trades in recorded.items():
        times = [t.trade_time for t in trades]
        assert times == sorted(times), key
    assert {t.trade_type for t in recorded["csv:BTCUSDT"]} == {None}
    # The ws file's X field is kept. Its README mentions one INSURANCE_FUND trade, but the
    # file holds none: every message says MARKET (see the test below for other types).
    ws_types = Counter(t.trade_type for k, v in recorded.items() if k.startswith("ws") for t in v)
    assert ws_types == {"MARKET": 24356}


def test_ws_trade_type_such_as_insurance_fund_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, _ws(X="INSURANCE_FUND", p="62700.0") + "\n" + _ws(t=8) + "\n",
                  "ws.jsonl")
    trades = _trades(_read(path, "binance-ws", None))
    assert [t.trade_type for t in trades] == ["INSURANCE_FUND", "MARKET"]
    assert trades[0].price == Decimal("62700.0")


# --- CSV layouts ----------------------------------------------------------------------

TRADES_ROWS = (
    f"101,64000.10,0.010,640.001,{T_MS},true\n"
    f"102,64000.20,0.500,32000.1,{T_MS + 1},False\n"
)


def test_header_row_is_skipped_and_gives_the_same_trades(tmp_path: Path) -> None:
    plain = _trades(_read(_write(tmp_path, TRADES_ROWS, "plain.csv")))
    header = "id,price,qty,quote_qty,time,is_buyer_maker\n"
    with_header = _read(_write(tmp_path, header + TRADES_ROWS, "header.csv"))
    assert [r.line for r in with_header] == [2, 3]
    assert [(t.trade_id, t.price, t.taker_side) for t in _trades(with_header)] == \
        [(t.trade_id, t.price, t.taker_side) for t in plain] == \
        [(101, Decimal("64000.10"), Side.SELL), (102, Decimal("64000.20"), Side.BUY)]


def test_millisecond_and_microsecond_times_give_the_same_datetime(tmp_path: Path) -> None:
    rows = (f"1,100,1,100,{T_MS + 123},true\n"
            f"2,100,1,100,{(T_MS + 123) * 1000},true\n"
            f"3,100,1,100,{(T_MS + 123) * 1000 + 456},1\n")
    trades = _trades(_read(_write(tmp_path, rows)))
    assert trades[0].trade_time == trades[1].trade_time == \
        datetime(2024, 7, 19, 0, 0, 0, 123000, tzinfo=UTC)
    assert trades[2].trade_time == datetime(2024, 7, 19, 0, 0, 0, 123456, tzinfo=UTC)


def test_aggtrades_layout_with_and_without_is_best_match(tmp_path: Path) -> None:
    rows = (f"26129,0.01633102,4.70443515,27781,27781,{T_MS},true,True\n"
            f"26130,0.01633200,1.00000000,27782,27790,{T_MS * 1000 + 5},false\n")
    trades = _trades(_read(_write(tmp_path, rows), "binance-aggtrades", "bnbbtc"))
    assert [(t.trade_id, t.first_trade_id, t.last_trade_id) for t in trades] == \
        [(26129, 27781, 27781), (26130, 27782, 27790)]
    assert [t.taker_side for t in trades] == [Side.SELL, Side.BUY]
    assert trades[0].size == Decimal("4.70443515") and trades[0].symbol == "BNBBTC"
    assert trades[1].trade_time == datetime(2024, 7, 19, 0, 0, 0, 5, tzinfo=UTC)
    assert {t.trade_type for t in trades} == {None}


def test_header_of_the_other_layout_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
                            f"transact_time,is_buyer_maker\n1,2,3,4,5,{T_MS},true\n")
    with pytest.raises(InvalidInput, match="binance-aggtrades"):
        _read(path)


def test_gzip_is_opened_transparently_and_lines_are_physical(tmp_path: Path) -> None:
    text = "id,price,qty,quote_qty,time,is_buyer_maker\n\n" + TRADES_ROWS + "\n" + \
        f"103,abc,1,1,{T_MS},true\n"
    rows = _read(_write(tmp_path, text, "trades.csv.gz"))
    assert [(type(r).__name__, r.line) for r in rows] == \
        [("ParsedRow", 3), ("ParsedRow", 4), ("RejectedRow", 6)]


# --- bad rows: each one rejected with its line and a reason, never raised or dropped --

GOOD = f"1,64000.1,0.01,640.001,{T_MS},true"


@pytest.mark.parametrize(("row", "reason"), [
    (f"2,abc,0.01,1,{T_MS},true", "price is not a number: 'abc'"),
    (f"2,,0.01,1,{T_MS},true", "price is missing"),
    (f"2,NaN,0.01,1,{T_MS},true", "price is not finite: 'NaN'"),
    (f"2,Infinity,0.01,1,{T_MS},true", "price is not finite: 'Infinity'"),
    (f"2,0,0.01,1,{T_MS},true", "price is not positive: '0'"),
    (f"2,-64000.1,0.01,1,{T_MS},true", "price is not positive: '-64000.1'"),
    (f"2,64000.1,-1,1,{T_MS},true", "size is not positive: '-1'"),
    (f"2,64000.1,0,1,{T_MS},true", "size is not positive: '0'"),
    (f"2,64000.1,0.0000000000000000001,1,{T_MS},true",
     "size has more than 18 decimal places: '0.0000000000000000001'"),
    (f"2,1E+25,0.01,1,{T_MS},true", "price is too large for decimal(38, 18)"),
    (f"-2,64000.1,0.01,1,{T_MS},true", "trade_id is negative: -2"),
    (f"2.5,64000.1,0.01,1,{T_MS},true", "trade_id (id) is not an integer: '2.5'"),
    (f"2,64000.1,0.01,1,{T_MS},maybe", "taker_side (is_buyer_maker) is not true or false: 'maybe'"),
    (f"2,64000.1,0.01,1,{T_MS}", "missing field(s): is_buyer_maker"),
    ("2,64000.1", "missing field(s): qty, quote_qty, time, is_buyer_maker"),
    (f"2,64000.1,0.01,1,{T_MS},true,true,extra", "too many columns: 8"),
    ("2,64000.1,0.01,1,1721347200,true", "is not epoch milliseconds or microseconds"),
    ("2,64000.1,0.01,1,soon,true", "trade_time (time) is not an integer: 'soon'"),
    (f"id,price,qty,quote_qty,{T_MS},true", "trade_id (id) is not an integer: 'id'"),
])
def test_bad_csv_row_is_rejected_with_line_and_reason(tmp_path: Path, row: str,
                                                      reason: str) -> None:
    rows = _read(_write(tmp_path, f"{GOOD}\n\n{row}\n{GOOD.replace('1,', '3,', 1)}\n"))
    assert [(type(r).__name__, r.line) for r in rows] == \
        [("ParsedRow", 1), ("RejectedRow", 3), ("ParsedRow", 4)]
    rejected = rows[1]
    assert isinstance(rejected, RejectedRow)
    assert reason in rejected.reason
    assert rejected.raw == row


def test_garbled_first_row_is_rejected_not_taken_for_a_header(tmp_path: Path) -> None:
    rows = _read(_write(tmp_path, f"x1,64000.1,0.01,1,{T_MS},true\n{GOOD}\n"))
    assert [(type(r).__name__, r.line) for r in rows] == [("RejectedRow", 1), ("ParsedRow", 2)]


def test_undecodable_bytes_reject_the_row_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(GOOD.encode() + b"\n2,64\xff\xfe.1,0.01,1,1721347200000,true\n")
    rows = _read(path)
    assert isinstance(rows[0], ParsedRow)
    assert isinstance(rows[1], RejectedRow) and "price is not a number" in rows[1].reason


def test_trailing_zeros_past_18_places_are_exact_and_accepted(tmp_path: Path) -> None:
    rows = _read(_write(tmp_path, f"1,64000.1000000000000000000000,0.01,1,{T_MS},true\n"))
    (trade,) = _trades(rows)
    assert trade.price == Decimal("64000.1") and trade_problems(trade) == []


# --- websocket recordings -------------------------------------------------------------


def test_ws_raw_combined_and_aggtrade_messages(tmp_path: Path) -> None:
    raw = json.loads(_ws(t=9))["data"]
    agg = {"e": "aggTrade", "E": T_MS, "s": "BTCUSDT", "a": 55, "p": "64000.3", "q": "0.2",
           "f": 100, "l": 104, "T": T_MS, "m": False}
    text = "\n".join([_ws(), "", json.dumps(raw), json.dumps(agg)]) + "\n"
    rows = _read(_write(tmp_path, text, "ws.jsonl"), "binance-ws", None)
    assert [r.line for r in rows] == [1, 3, 4]  # the blank line is skipped silently
    trades = _trades(rows)
    assert [(t.trade_id, t.taker_side) for t in trades] == \
        [(7, Side.SELL), (9, Side.SELL), (55, Side.BUY)]
    assert (trades[2].first_trade_id, trades[2].last_trade_id, trades[2].trade_type) == \
        (100, 104, None)
    assert trades[0].trade_time == trades[0].envelope.event_time == T


@pytest.mark.parametrize(("line", "reason"), [
    (json.dumps({"stream": "btcusdt@depth", "data": {"e": "depthUpdate", "s": "BTCUSDT"}}),
     "not a trade message: event type 'depthUpdate'"),
    (json.dumps({"result": None, "id": 1}), "not a trade message: no event type (e)"),
    ('{"e": "trade", "s": ', "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (_ws(s="ETHUSDT"), "symbol 'ETHUSDT' is not the --symbol BTCUSDT"),
    (_ws(p="abc"), "price (p) is not a number: 'abc'"),
    (_ws(q="NaN"), "size (q) is not finite: 'NaN'"),
    (_ws(p=None), "price (p) is missing"),
    (_ws(m="sometimes"), "taker_side (m) is not true or false: 'sometimes'"),
    (_ws(t=-7), "trade_id is negative: -7"),
    (_ws(T="later"), "trade_time (T) is not an integer: 'later'"),
])
def test_bad_ws_message_is_rejected_with_a_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = _write(tmp_path, f"{_ws()}\n{line}\n", "ws.jsonl")
    rows = list(read_trades(path, "binance-ws", symbol="btcusdt"))
    assert isinstance(rows[0], ParsedRow)
    assert [(r.line, reason in r.reason) for r in _rejected(rows)] == [(2, True)]


# --- our own JSON lines ---------------------------------------------------------------


def test_jsonl_round_trips_event_to_json_output(tmp_path: Path) -> None:
    originals = [make_trade(), make_trade(trade_id=2, first_trade_id=None, last_trade_id=None,
                                          price=Decimal("0.000000000000000001"))]
    text = "".join(json.dumps(event_to_json(t)) + "\n" for t in originals)
    rows = _read(_write(tmp_path, text, "dump.jsonl.gz"), "jsonl", None)
    assert _trades(rows) == originals  # envelope (event_id, lineage, times) included


def test_jsonl_without_envelope_gets_a_fresh_one(tmp_path: Path) -> None:
    payload = {k: v for k, v in event_to_json(make_trade()).items() if k != "envelope"}
    del payload["venue"]
    path = _write(tmp_path, json.dumps(payload) + "\n" + json.dumps(payload) + "\n", "t.jsonl")
    first, second = _trades(list(read_trades(path, "jsonl", venue="kraken", producer="me")))
    assert first.envelope.event_time == first.trade_time == make_trade().trade_time
    assert first.envelope.event_type == "Trade" and first.envelope.producer == "me"
    assert first.envelope.event_id != second.envelope.event_id
    assert first.venue == "kraken"


@pytest.mark.parametrize(("change", "reason"), [
    ({"price": "abc"}, "price is not a number: 'abc'"),
    ({"size": "-0.5"}, "size is not positive: '-0.5'"),
    ({"taker_side": "HOLD"}, "taker_side: 'HOLD' is not a valid Side"),
    ({"trade_id": None}, "trade_id is required"),
    ({"trade_time": "yesterday"}, "trade_time"),
    ({"colour": "red"}, "unknown field(s): colour"),
    ({"envelope": {**event_to_json(make_trade())["envelope"], "event_type": "Candle"}},
     "envelope.event_type is 'Candle', not 'Trade'"),
])
def test_bad_jsonl_row_is_rejected_with_a_reason(tmp_path: Path, change: dict[str, object],
                                                 reason: str) -> None:
    good = event_to_json(make_trade())
    text = json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n"
    rows = _read(_write(tmp_path, text, "t.jsonl"), "jsonl", None)
    assert isinstance(rows[0], ParsedRow)
    assert [(r.line, reason in r.reason) for r in _rejected(rows)] == [(2, True)]


def test_jsonl_missing_field_names_it(tmp_path: Path) -> None:
    payload = {k: v for k, v in event_to_json(make_trade()).items() if k != "price"}
    rows = _read(_write(tmp_path, json.dumps(payload) + "\n", "t.jsonl"), "jsonl", None)
    assert [r.reason for r in _rejected(rows)] == ["missing field: price"]


# --- the validation rule --------------------------------------------------------------


def test_trade_problems_lists_every_problem_by_field() -> None:
    assert trade_problems(make_trade()) == []
    bad = dataclasses.replace(make_trade(), price=Decimal("-1"), size=Decimal("0"),
                              trade_id=-3, first_trade_id=9, last_trade_id=4,
                              trade_time=datetime(2024, 7, 19), symbol=" ")
    assert trade_problems(bad) == [
        "symbol is empty: ' '",
        "price is not positive: '-1'",
        "size is not positive: '0'",
        "trade_id is negative: -3",
        "trade_time has no timezone: datetime.datetime(2024, 7, 19, 0, 0)",
        "first_trade_id 9 is after last_trade_id 4",
    ]


# --- file-level errors: one clear line, raised before any row is read ----------------


def test_unknown_format_missing_symbol_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "\n")
    with pytest.raises(InvalidInput, match="unknown format 'csv': expected one of binance-trades"):
        read_trades(path, "csv", symbol="BTCUSDT")
    with pytest.raises(InvalidInput, match="--symbol is required for binance-trades files"):
        read_trades(path, "binance-trades")
    with pytest.raises(InvalidInput, match="--symbol is required for binance-aggtrades files"):
        read_trades(path, "binance-aggtrades", symbol="  ")
    with pytest.raises(InvalidInput, match=r"no such file: .*nope\.csv"):
        read_trades(tmp_path / "nope.csv", "binance-trades", symbol="BTCUSDT")
    with pytest.raises(InvalidInput, match="not a file"):
        read_trades(tmp_path, "jsonl")


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress((GOOD + "\n").encode() * 5000)[:-200])
    with pytest.raises(InvalidInput, match=f"cannot read {path}"):
        _read(path)
