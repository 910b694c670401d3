"""The ledger's row at many symbols: `python -m bench.ledger_row [--symbols 4,500,5000]`.

One paper account whose market has N symbols, one mark per symbol per second of market
time (as domain.market.marks makes them: derived ids, amounts at 18 places), and, with
``--reporting``, each symbol's strategy reporting its progress every second after the
marks (what keeps about a minute of marks per symbol in the row). After ``--warmup``
seconds of market time (the row at its steady size, written once), for ``--seconds`` more it
times the fold of the N marks a second (and N progress records), and a row write every
``--row-interval`` seconds as the agent makes them for inputs that emit nothing
(``tables.trading.account_row`` and the JSON the changelog gets; live, a second of market
time is a second of wall time), and prints the row's bytes, the per-mark cost of fold + row
writes, and a restart's read of the row (JSON decode + ``load_account``). In process: no
broker.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from domain.clock import to_micros
from domain.fold import step
from domain.market.marks import MarkSlice, mark_record
from domain.trading.account import Account, Input, decider
from domain.trading.orders import RiskLimits, TradingConfig
from schemas.records import StrategyProgressed
from tables.trading import account_row, load_account

START = datetime(2024, 7, 19, tzinfo=UTC)
CONFIG = TradingConfig(RiskLimits(Decimal(10), Decimal(10**9), 10**6), Decimal(10), Decimal(5),
                       Decimal("0.5"), 30_000_000, account="bench", strategy="ema_cross")
_encode = json.JSONEncoder(separators=(",", ":")).encode  # what the table's serializer writes


def second_of_inputs(symbols: list[str], second: int, reporting: bool) -> list[Input]:
    """One second of market time: a mark per symbol, then (reporting) each one's progress."""
    at = START + timedelta(seconds=second)
    time_us = to_micros(at)
    inputs: list[Input] = []
    for n, symbol in enumerate(symbols):
        price = (60_000 + (second * 7 + n) % 50) * 10**18 + 123 * 10**15
        inputs.append(mark_record(MarkSlice(symbol, time_us - 900_000, time_us, second * 10_000 + n, price,
                                            (1 + (second + n) % 9) * 10**16, 3)))
    if reporting:
        inputs += [StrategyProgressed(envelope=StrategyProgressed.envelope_for(
            event_time=at, producer="strategy.ema_cross", event_id=f"p-{symbol}-{second}"),
            account="bench", symbol=symbol, strategy="ema_cross") for symbol in symbols]
    return inputs


def run(count: int, warmup: int, seconds: int, reporting: bool, interval: int) -> dict[str, float]:
    """Figures for ``count`` symbols (see the module's doc)."""
    symbols = [f"S{n:05d}USDT" for n in range(count)]
    decide = decider(CONFIG)
    state, offset = Account.open("bench", Decimal(10**7)), 0
    for second in range(warmup):
        for item in second_of_inputs(symbols, second, reporting):
            state, _ = step(decide, state, item, 0, offset := offset + 1)
    data = _encode(account_row(state)).encode()
    fold_s = write_s = 0.0
    writes = 0
    for second in range(warmup, warmup + seconds):
        inputs = second_of_inputs(symbols, second, reporting)
        began = time.perf_counter()
        for item in inputs:
            state, _ = step(decide, state, item, 0, offset := offset + 1)
        folded = time.perf_counter()
        fold_s += folded - began
        if (second - warmup + 1) % interval == 0:
            data = _encode(account_row(state)).encode()
            write_s += time.perf_counter() - folded
            writes += 1
    began = time.perf_counter()
    load_account(cast(Any, {"bench": json.loads(data)}), "bench", Decimal(1))
    read_s = time.perf_counter() - began
    marks = seconds * count
    return {"symbols": count, "row_bytes": len(data), "kept_marks": sum(len(m) for m in state.marks.values()),
            "fold_us_per_mark": fold_s / marks * 1e6, "write_ms": write_s / max(writes, 1) * 1e3,
            "fold_and_write_us_per_mark": (fold_s + write_s) / marks * 1e6, "read_ms": read_s * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="4,500,5000", help="comma-separated symbol counts")
    parser.add_argument("--warmup", type=int, default=62, help="seconds of market time before timing")
    parser.add_argument("--seconds", type=int, default=3, help="seconds of market time timed")
    parser.add_argument("--row-interval", type=int, default=1, help="seconds between row writes")
    parser.add_argument("--reporting", action=argparse.BooleanOptionalAction, default=True,
                        help="each symbol's strategy reports progress every second")
    args = parser.parse_args()
    for count in (int(c) for c in args.symbols.split(",")):
        figures = run(count, args.warmup, args.seconds, args.reporting, args.row_interval)
        print("  ".join(f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v:,}" for k, v in figures.items()),
              flush=True)


if __name__ == "__main__":
    main()
