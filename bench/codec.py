"""Encode/decode throughput for Trade records: ticktide's codec, raw fastavro, Apache avro.

    python -m bench.codec [--records N] [--repeat R]

All three write and read the same schema (the latest Trade .avsc) and the same data.
ticktide's codec adds the wire-format header and the typed-record conversion on top of
fastavro. Apache avro 1.12's Python encoder writes a decimal's own digits without rescaling
to the schema's scale (64012.10 would be read back as 6.40121E-12), so every decimal here
is quantized to the schema's 18 places first; the bench checks all three agree.
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import avro.io
import avro.schema
import fastavro

from schemas.files import latest
from schemas.records import Side, Trade
from streams.kafka.codec import AvroCodec, to_avro
from streams.kafka.registry import EmbeddedRegistry

DESCRIPTION = "Encode/decode records/s for Trade: ticktide's codec, fastavro, Apache avro."
DEFAULT_RECORDS = 10_000
DEFAULT_REPEAT = 3
SCALE = Decimal(1).scaleb(-18)


def make_trades(count: int, seed: int = 7) -> list[Trade]:
    """A seeded random walk of BTCUSDT trades, decimals at the schema's 18 places."""
    rng = random.Random(seed)
    start = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)
    price = Decimal("64000.00")
    trades = []
    for n in range(count):
        price += Decimal(rng.randint(-50, 50)) / 10
        when = start + timedelta(microseconds=n * 7_919)
        trades.append(Trade(
            envelope=Trade.envelope_for(event_time=when, producer="bench.codec",
                                        ingest_time=when + timedelta(milliseconds=3)),
            venue="binance-usdm",
            symbol="BTCUSDT",
            trade_id=2_041_000_000 + n,
            price=price.quantize(SCALE),
            size=(Decimal(rng.randint(1, 50_000)) / 1000).quantize(SCALE),
            taker_side=Side.BUY if rng.random() < 0.5 else Side.SELL,
            trade_time=when,
            trade_type="MARKET",
            first_trade_id=4_711_000_000 + 3 * n,
            last_trade_id=4_711_000_002 + 3 * n,
        ))
    return trades


T = TypeVar("T")


def _timed(count: int, run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Best records/s over ``repeat`` passes (GC off while timing, as timeit does)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return count / best, result


def _fastavro_writer(parsed: Any) -> Callable[[dict[str, Any]], bytes]:
    def write(datum: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, datum)
        return buffer.getvalue()

    return write


def _avro_writer(writer: avro.io.DatumWriter) -> Callable[[dict[str, Any]], bytes]:
    def write(datum: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        writer.write(datum, avro.io.BinaryEncoder(buffer))
        return buffer.getvalue()

    return write


def bench(count: int, repeat: int) -> dict[str, tuple[float, float]]:
    """(encode, decode) records/s per implementation, best of ``repeat`` passes."""
    trades = make_trades(count)
    datums = [to_avro(t) for t in trades]
    version = latest(Trade.AVRO_NAME)
    codec = AvroCodec(EmbeddedRegistry())
    codec.decode(codec.encode(trades[0]))  # warm the codec's writer and reader caches
    parsed = fastavro.parse_schema(version.schema)
    schema = avro.schema.parse(version.text)
    reader = avro.io.DatumReader(schema, schema)
    fast_write, avro_write = _fastavro_writer(parsed), _avro_writer(avro.io.DatumWriter(schema))

    results: dict[str, tuple[float, float]] = {}
    enc, wire = _timed(count, lambda: [codec.encode(t) for t in trades], repeat)
    dec, _ = _timed(count, lambda: [codec.decode(w) for w in wire], repeat)
    results["ticktide AvroCodec"] = (enc, dec)
    enc, bodies = _timed(count, lambda: [fast_write(d) for d in datums], repeat)
    dec, _ = _timed(count, lambda: [
        fastavro.schemaless_reader(io.BytesIO(b), parsed, None) for b in bodies
    ], repeat)
    results["fastavro (raw)"] = (enc, dec)
    enc, avro_bodies = _timed(count, lambda: [avro_write(d) for d in datums], repeat)
    dec, _ = _timed(count, lambda: [
        reader.read(avro.io.BinaryDecoder(io.BytesIO(b))) for b in avro_bodies
    ], repeat)
    results["avro (Apache)"] = (enc, dec)

    _check_agreement(trades, wire, bodies, avro_bodies, codec, parsed, reader)
    return results


def _check_agreement(trades: Sequence[Trade], wire: Sequence[bytes], bodies: Sequence[bytes],
                     avro_bodies: Sequence[bytes], codec: AvroCodec, parsed: Any,
                     reader: avro.io.DatumReader) -> None:
    """The three measured the same work: same bytes, same values back."""
    assert [w[5:] for w in wire] == list(bodies) == list(avro_bodies), "encodings differ"
    for index in (0, len(trades) // 2, len(trades) - 1):
        expected = to_avro(trades[index])
        assert codec.decode(wire[index]) == trades[index]
        assert fastavro.schemaless_reader(io.BytesIO(bodies[index]), parsed, None) == expected
        assert reader.read(avro.io.BinaryDecoder(io.BytesIO(avro_bodies[index]))) == expected


def report(count: int, repeat: int, results: dict[str, tuple[float, float]]) -> str:
    """The table and the fastavro/avro ratios."""
    lines = [f"Trade records: {count} per pass, best of {repeat} passes", "",
             f"{'implementation':<20} {'encode rec/s':>14} {'decode rec/s':>14}"]
    lines += [f"{name:<20} {enc:>14,.0f} {dec:>14,.0f}" for name, (enc, dec) in results.items()]
    avro_enc, avro_dec = results["avro (Apache)"]
    lines.append("")
    for name in ("fastavro (raw)", "ticktide AvroCodec"):
        enc, dec = results[name]
        lines.append(f"{name} / avro: encode x{enc / avro_enc:.1f}, decode x{dec / avro_dec:.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=DESCRIPTION)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS,
                        help=f"Trade records per measurement (default {DEFAULT_RECORDS})")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"passes per measurement, the best counts (default {DEFAULT_REPEAT})")
    args = parser.parse_args(argv)
    if args.records < 3 or args.repeat < 1:
        parser.error("--records must be at least 3 and --repeat at least 1")
    print(report(args.records, args.repeat, bench(args.records, args.repeat)))


if __name__ == "__main__":
    main()
