"""The synthetic trade feed behind `ticktide produce market.trades --synthetic`."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice, pairwise

import pytest

from domain.rules.fields import decimal_places
from schemas.records import Side, Trade
from streams.errors import InvalidInput
from streams.ingest import synthetic_trades, trade_problems
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry

START = datetime(2024, 7, 19, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "DOGEUSDT")


def _take(n: int, symbols: tuple[str, ...] = SYMBOLS, **options: object) -> list[Trade]:
    options = {"seed": 7, "start": START, **options}
    return list(islice(synthetic_trades(symbols, **options), n))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def feed() -> list[Trade]:
    return _take(60_000)


def _by_symbol(trades: list[Trade]) -> dict[str, list[Trade]]:
    grouped: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        grouped[trade.symbol].append(trade)
    return grouped


def _out_of_order_share(trades: list[Trade]) -> float:
    """Share of trades with a trade_time before an earlier trade of the same symbol."""
    late, latest = 0, dict[str, datetime]()
    for trade in trades:
        seen = latest.get(trade.symbol)
        if seen is not None and trade.trade_time < seen:
            late += 1
        else:
            latest[trade.symbol] = trade.trade_time
    return late / len(trades)


def test_same_seed_same_feed_other_seed_other_feed() -> None:
    assert _take(2_000) == _take(2_000)  # envelopes (event ids, times) included
    other = _take(2_000, seed=8)
    assert [t.price for t in other] != [t.price for t in _take(2_000)]


def test_every_trade_is_valid_and_encodes_to_avro(feed: list[Trade]) -> None:
    assert [t for t in feed if trade_problems(t)] == []
    codec = AvroCodec(EmbeddedRegistry())
    for trade in feed[:2_000]:
        assert codec.decode(codec.encode(trade)) == trade


def test_trade_ids_are_consecutive_per_symbol(feed: list[Trade]) -> None:
    grouped = _by_symbol(feed)
    assert set(grouped) == set(SYMBOLS)
    for trades in grouped.values():
        ids = [t.trade_id for t in trades]
        assert ids == list(range(ids[0], ids[0] + len(ids)))


@pytest.mark.parametrize("share", [0.0, 0.01, 0.1])
def test_out_of_order_share_is_close_to_the_requested_one(share: float) -> None:
    trades = _take(60_000, out_of_order_share=share)
    assert _out_of_order_share(trades) == pytest.approx(share, abs=0.003)
    late_by = [t.envelope.ingest_time - t.trade_time for t in trades]
    assert max(late_by) <= timedelta(seconds=3.1)  # "up to a few seconds"


def test_time_follows_the_rate_from_start_without_sleeping() -> None:
    trades = _take(20_000, rate=2.0)  # 10,000 simulated seconds, generated at once
    arrivals = [t.envelope.ingest_time for t in trades]
    assert arrivals == sorted(arrivals) and START <= arrivals[0] < START + timedelta(seconds=10)
    mean_gap = (arrivals[-1] - START).total_seconds() / len(trades)
    assert mean_gap == pytest.approx(0.5, rel=0.1)
    assert all(t.envelope.event_time == t.trade_time for t in trades)


def test_bursts_pack_many_trades_into_a_short_time(feed: list[Trade]) -> None:
    per_100ms = Counter(int((t.envelope.ingest_time - START).total_seconds() * 10) for t in feed)
    mean = len(feed) / (max(per_100ms) + 1)
    assert max(per_100ms.values()) > 3 * mean


def test_prices_sit_on_the_tick_grid_near_sensible_levels(feed: list[Trade]) -> None:
    grouped = _by_symbol(feed)
    for symbol, level, decimals in (("BTCUSDT", 60_000, 1), ("ETHUSDT", 3_000, 2),
                                    ("DOGEUSDT", 100, 2)):
        prices = [t.price for t in grouped[symbol]]
        assert max(decimal_places(p) for p in prices) <= decimals
        assert level * 0.9 < statistics.median(prices) < level * 1.1
        same = sum(a == b for a, b in pairwise(prices)) / len(prices)
        assert 0.3 < same < 0.9  # many fills at the previous price, as on a real venue


def test_sizes_are_skewed_with_occasional_large_prints(feed: list[Trade]) -> None:
    sizes = sorted(t.size for t in _by_symbol(feed)["BTCUSDT"])
    median = sizes[len(sizes) // 2]
    assert Decimal("0.005") <= median <= Decimal("0.02")
    assert sizes[-1] > 50 * median and min(sizes) > 0


def test_buying_dominates_while_the_price_rises(feed: list[Trade]) -> None:
    trades = _by_symbol(feed)["ETHUSDT"]
    moves, imbalances = [], []
    for i in range(0, len(trades) - 200, 200):
        window = trades[i:i + 200]
        moves.append(float(window[-1].price / window[0].price - 1))
        imbalances.append(sum(1 if t.taker_side is Side.BUY else -1 for t in window))
    assert statistics.correlation(moves, imbalances) > 0.3


def test_event_ids_are_unique_uuid4s(feed: list[Trade]) -> None:
    ids = [t.envelope.event_id for t in feed]
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids[:1000]} == {4}
    assert {(t.envelope.producer, t.venue) for t in feed} == {("feed.synthetic", "synthetic")}


@pytest.mark.parametrize(("options", "message"), [
    ({"symbols": []}, "at least one symbol"),
    ({"symbols": "BTCUSDT"}, "not one string"),
    ({"rate": 0.0}, "rate must be a positive number"),
    ({"out_of_order_share": 1.5}, "out_of_order_share must be in"),
])
def test_bad_arguments_fail_at_once(options: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"symbols": ["BTCUSDT"], **options}
    with pytest.raises(InvalidInput, match=message):
        synthetic_trades(**arguments)  # type: ignore[arg-type]


def test_symbols_are_upper_cased_and_deduplicated() -> None:
    trades = _take(500, ("btcusdt", "BTCUSDT"))
    assert {t.symbol for t in trades} == {"BTCUSDT"}
