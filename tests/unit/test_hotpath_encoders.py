"""The hot-path encoders write exactly the codec's bytes for Candle and Mark records (and the
analysis' IndicatorSnapshot and Anomaly records), and refuse what no longer fits the contract."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest

from domain.analysis.anomalies import Finding
from domain.analysis.indicators import Indicators
from domain.analysis.series import anomaly_record, derived_id, snapshot_record
from domain.clock import from_micros
from domain.market.bars import Bar, Tick
from domain.market.candles import (
    UNITS,
    UNKNOWN,
    CandleFold,
    ClosedCandle,
    ClosedSlice,
    SymbolCandles,
    candle_id,
    candle_record,
)
from domain.market.marks import MarkSlice, mark_id, mark_record, slice_of
from domain.market.windows import parse_windows
from schemas.records import Event, IndicatorSnapshot, Priority
from streams.errors import EncodeError, InvalidValue
from streams.hotpath.avro_writer import MEMO_SIZE, remember, varint
from streams.hotpath.encoders import AnomalyEncoder, CandleEncoder, MarkEncoder, SnapshotEncoder
from streams.kafka.codec import AvroCodec
from streams.kafka.registry import EmbeddedRegistry
from tests.unit.test_indicators import random_walk

CODEC = AvroCodec(EmbeddedRegistry())
FOLD = CandleFold(parse_windows("1s,1m,5m,5m/1m"), 0)


def test_candles_encode_to_the_codec_bytes() -> None:
    rng = random.Random(11)
    encoder = CandleEncoder(CODEC, "agent.market")
    for symbol in ("BTCUSDT", "ETH-PERP", "X" * 32):
        state = SymbolCandles(symbol)
        closed: list[ClosedCandle] = []
        for trade_id in range(400):
            price = rng.randrange(1, 10**8 * UNITS)  # up to 100,000,000 in 1e-18 units
            tick = Tick(symbol, trade_id, 1_721_347_200_000_000 + trade_id * 700_000, price,
                        rng.randrange(1, 10**4 * UNITS), rng.random() < 0.5)
            closed += [c for c in FOLD.evolve(state, tick)[1] if isinstance(c, ClosedCandle)]
        closed += FOLD.close_all(state)
        assert {c.interval for c in closed} == {"1s", "1m", "5m", "5m/1m"}
        for candle in closed:
            ingest_us = 1_764_500_000_000_000 + rng.randrange(10**6)
            assert encoder.encode(candle, ingest_us) == CODEC.encode(
                candle_record(candle, "agent.market", from_micros(ingest_us)))


def test_a_candle_of_a_pre_v2_bar_encodes_its_unknown_taker_buy_quote_as_null() -> None:
    bar = Bar.first(0, 60_000_000, Tick("BTCUSDT", 1, 5, 64_000 * UNITS, UNITS, True))
    bar.buy_quote = UNKNOWN + bar.buy_quote
    closed = ClosedCandle("BTCUSDT", "1m", bar)
    record = candle_record(closed, "agent.market", from_micros(7))
    assert record.taker_buy_quote_volume is None
    assert CandleEncoder(CODEC, "agent.market").encode(closed, 7) == CODEC.encode(record)


def test_a_candle_past_decimal_38_18_is_refused() -> None:
    big = 10**19 * UNITS  # a valid price and size, but their product's sum overflows
    bar = Bar.first(0, 1_000_000, Tick("BTCUSDT", 1, 0, big, big, True))
    with pytest.raises(InvalidValue, match="quote_volume"):
        CandleEncoder(CODEC, "agent.market").encode(ClosedCandle("BTCUSDT", "1s", bar), 0)


def test_candle_and_mark_ids_are_uuid5() -> None:
    """Consumers de-duplicate re-emits by these ids (and replays compare them with live's):
    they must stay the UUID5s they always were."""
    candles = uuid.UUID("5b0f3c3e-6a52-4c1e-9f4e-7c1d2b8e9a01")
    marks = uuid.UUID("e2b7c9d4-1f3a-4c5e-8b6d-0a9f8e7d6c5b")
    for symbol, interval, start in [("BTCUSDT", "1m", 0), ("ÉTH", "5m/1m", -5), ("X" * 32, "1s", 10**15)]:
        assert candle_id(symbol, interval, start) == str(uuid.uuid5(candles, f"{symbol}|{interval}|{start}"))
        mark = MarkSlice(symbol, start, start + 7, 42, 10**20, 3 * UNITS, 2)
        assert mark_id(mark) == str(uuid.uuid5(marks, f"{symbol}|42|{3 * UNITS}"))
    derived = uuid.UUID("0f6b2a8e-3c1d-4b7a-9e52-d84c7f1a6b30")  # snapshots and anomalies of a candle
    for what in ("indicators", "anomaly:volume_spike", "ü"):
        assert derived_id("5b0f3c3e-candle", what) == str(uuid.uuid5(derived, f"5b0f3c3e-candle|{what}"))


def test_marks_encode_to_the_codec_bytes() -> None:
    rng = random.Random(5)
    ticks = [Tick(rng.choice(("BTCUSDT", "ETHUSDT", "Ω-PERP")), trade_id, 1_721_347_200_000_000 + trade_id * 90_000,
                  rng.randrange(1, 10**9 * UNITS), rng.randrange(1, 10**6 * UNITS), rng.random() < 0.5)
             for trade_id in range(500)]
    encoder = MarkEncoder(CODEC)
    fold = CandleFold(parse_windows("1m"), 0, mark_step_us=1_000_000)
    states: dict[str, SymbolCandles] = {}
    closed = [o for t in ticks for o in fold.evolve(states.setdefault(t.symbol, SymbolCandles(t.symbol)), t)[1]]
    marks = [slice_of(o) for o in closed if isinstance(o, ClosedSlice)]
    assert len(marks) > 40
    for mark in marks:
        ingest_us = 1_764_500_000_000_000 + mark.count
        record = mark_record(mark)
        expected = CODEC.encode(replace(record, envelope=replace(record.envelope, ingest_time=from_micros(ingest_us))))
        assert encoder.encode(mark, ingest_us) == expected


def test_a_memo_gives_the_bytes_written_and_starts_again_when_full() -> None:
    known: dict[int, bytes] = {}
    calls: list[int] = []

    def write(value: int) -> bytes:
        calls.append(value)
        return varint(value)

    for value in range(MEMO_SIZE + 10):
        assert remember(known, write, value) == varint(value)
    assert len(known) == 10  # full at MEMO_SIZE: it started again
    assert known[MEMO_SIZE + 9] == varint(MEMO_SIZE + 9) and len(calls) == MEMO_SIZE + 10


def test_snapshots_encode_to_the_codec_bytes_and_what_the_writer_does_not_cover_gets_the_codecs_answer() -> None:
    rng = random.Random(3)
    fallback = CountingCodec(EmbeddedRegistry())
    encoder = SnapshotEncoder(fallback, "agent.analysis")
    snapshots = []
    for candle in random_walk(120, seed=9):  # each indicator None (warming up) or a value; 0-3 anomalies
        values = Indicators(**{name: rng.choice([None, rng.uniform(-1e6, 1e6), 0.0, -0.0, 1e-300, 100])
                               for name in ("ema_fast", "ema_slow", "rsi", "atr", "realised_volatility",
                                            "volume_zscore")})
        ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rng.choice([0, 0, 1, 3]))]
        snapshot = snapshot_record(candle, values, "agent.analysis", candle.window_end, ids)
        snapshots.append(replace(snapshot, envelope=replace(
            snapshot.envelope, correlation_id=rng.choice([None, "flow-ü"]), causation_id=rng.choice([None, "c"]))))
    for close in ("0.000000000000000001", "99999999999999999999.999999999999999999", "64000"):
        snapshots.append(replace(snapshots[-1], close=Decimal(close)))
    for snapshot in snapshots:
        assert encoder.encode(snapshot) == CODEC.encode(snapshot)
    assert sum(s.rsi is None for s in snapshots) > 10 and sum(bool(s.anomaly_ids) for s in snapshots) > 20
    assert fallback.encoded == 0  # all written raw

    usual = snapshots[50]
    uncovered = [replace(usual, envelope=replace(usual.envelope, producer="agent.other")),
                 replace(usual, envelope=replace(usual.envelope, priority=Priority.HIGH, retry_count=2)),
                 replace(usual, close=Decimal(10**20))]  # 39 digits: the codec writes it, so must this
    for snapshot in uncovered:
        assert encoder.encode(snapshot) == CODEC.encode(snapshot)
    for close in ("1.0000000000000000001", "NaN", "Infinity"):  # the codec refuses these
        bad = replace(usual, close=Decimal(close))
        assert refusal(encoder.encode, bad) == refusal(CODEC.encode, bad)


class CountingCodec(AvroCodec):
    """The codec, counting the records it encodes."""

    encoded = 0

    def encode(self, event: Event) -> bytes:
        self.encoded += 1
        return super().encode(event)


def test_anomalies_encode_to_the_codec_bytes() -> None:
    rng = random.Random(4)
    fallback = CountingCodec(EmbeddedRegistry())
    encoder = AnomalyEncoder(fallback, "agent.analysis")
    anomalies = []
    for candle in random_walk(60, seed=2):
        finding = Finding(rng.choice(["gap", "return_sigma", "volume_zscore"]),
                          rng.choice([0.0, -0.0, 1e-300, rng.uniform(-1e9, 1e9), math.inf, math.nan]),
                          rng.choice([0.0, 4.0, rng.random()]), rng.choice(["", "gap: 1s", "\u03c3 ü 😀" * 50]))
        anomaly = anomaly_record(candle, finding, "agent.analysis", candle.window_end)
        anomalies.append(replace(anomaly, envelope=replace(anomaly.envelope, correlation_id=rng.choice([None, "f"]))))
    for anomaly in anomalies:
        assert encoder.encode(anomaly) == CODEC.encode(anomaly)
    assert fallback.encoded == 0  # all written raw
    other = replace(anomalies[0], envelope=replace(anomalies[0].envelope, producer="agent.other"))
    assert encoder.encode(other) == CODEC.encode(other) and fallback.encoded == 1


def refusal(encode: Callable[[IndicatorSnapshot], bytes], snapshot: IndicatorSnapshot) -> str:
    """What ``encode`` says when it refuses ``snapshot``."""
    with pytest.raises(EncodeError) as refused:
        encode(snapshot)
    return str(refused.value)
