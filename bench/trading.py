"""Rebuild and replay throughput: `python -m bench.trading [--trades N] [--orders N]`.

On a fresh embedded broker: N synthetic trades on market.trades, and the trading.events
of a paper account that traded on them (decided by the ledger's fold, domain.trading.account:
orders every few marks, fills, position changes). Then times
  * the portfolio rebuild (read trading.events + decode + ledger fold), as in
    `ticktide rebuild portfolio`;
  * the candle rebuild (read market.trades + decode + candle fold), as in
    `ticktide rebuild candles`;
  * `ticktide replay --topic market.trades --from 0 --speed max --into bench.market.trades`
    (the command itself, progress bar included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from itertools import islice
from pathlib import Path

from domain.fold import step
from domain.trading.account import Account, decider
from domain.trading.orders import RiskLimits, TradingConfig
from schemas.records import Event, Mark, OrderType, PlaceOrder, Side, Trade
from streams.devstack.broker import EmbeddedBroker
from streams.ingest import synthetic_trades
from streams.kafka.admin import create_topics
from streams.kafka.producer import EventProducer
from streams.settings import load_settings
from streams.tools.rebuild import fold_portfolios, rebuild_candles

CONFIG = TradingConfig(RiskLimits(Decimal(10), Decimal(10**9), 10**6), Decimal(10), Decimal(5),
                       Decimal("0.5"), 10**12)


def ledger_events(trades: list[Trade], every: int) -> list[Event]:
    """A paper account trading BTCUSDT on the feed: each trade a mark, an order every
    ``every`` trades."""
    decide = decider(CONFIG)
    events: list[Event] = []
    state, offset = Account.open("bench", Decimal(10**7)), 0
    for n, trade in enumerate(trades):
        mark = Mark(envelope=Mark.envelope_for(event_time=trade.trade_time, producer="bench",
                                               event_id=trade.envelope.event_id),
                    symbol=trade.symbol, price=trade.price, size=trade.size, trade_count=1,
                    last_trade_id=trade.trade_id, slice_start=trade.trade_time)
        state, out = step(decide, state, mark, 0, offset := offset + 1)
        events += out
        if n % every == 0:
            command = PlaceOrder(
                envelope=PlaceOrder.envelope_for(event_time=trade.trade_time, producer="bench"),
                order_id=f"bench:{n}", account="bench", symbol=trade.symbol,
                side=Side.BUY if (n // every) % 2 else Side.SELL, order_type=OrderType.MARKET,
                quantity=Decimal("0.01"))
            state, out = step(decide, state, command, 0, offset := offset + 1)
            events += out
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=5, help="An order every N trades")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(log_file=Path(tmp) / "broker.log")
        broker.start()
        try:
            settings = load_settings(broker=broker.bootstrap, broker_flavor="tansu", app_id="bench")
            create_topics(settings)
            create_topics(settings.model_copy(update={"topic_prefix": "bench."}))
            trades = list(islice(synthetic_trades(["BTCUSDT"], seed=5), args.trades))
            events = ledger_events(trades, args.every)
            with EventProducer(settings) as producer:
                for trade in trades:
                    producer.send("market.trades", trade)
                for event in events:
                    producer.send("trading.events", event, key="bench")
            result, _ = fold_portfolios(settings)
            print(f"rebuild portfolio: {result.events} events in {result.seconds:.2f} s = {result.rate:,.0f} events/s")
            candles = rebuild_candles(settings)
            print(f"rebuild candles:   {candles.events - 0} trades in {candles.seconds:.2f} s = "
                  f"{candles.rate:,.0f} events/s")
            env = {"TICKTIDE_BROKER": broker.bootstrap, "TICKTIDE_BROKER_FLAVOR": "tansu", "PATH": ""}
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "streams.cli", "replay", "--topic", "market.trades", "--from", "0",
                 "--speed", "max", "--into", "bench.market.trades"],
                env=env, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - started
            print(f"replay (command):  {done.stdout.strip().splitlines()[0]}; {wall:.2f} s wall incl. start-up")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
