"""A new owner of market.trades partitions (a restarted worker, partitions moved) and idle
close: the time no worker folded a partition is not its symbols' quiet."""

from __future__ import annotations

import asyncio

import pytest

from domain.market.candles import CandleFold
from streams.hotpath.driver import CandleDriver
from streams.hotpath.trade_decoder import TickDecoder
from tests.reference import bar_summary, fold_reference
from tests.unit.test_candle_driver import CODEC, GRACE, SPECS, FakePorts, deliver, feed, published

IDLE_CLOSE_S = 10
OUTAGE_S = 40
"""A worker SIGKILLed, a broker down, the next worker started: longer than the idle close."""


@pytest.mark.parametrize("close_all", [True, False], ids=["close_all_when_idle", "live"])
def test_a_worker_started_after_an_outage_folds_the_trades_that_follow_it(close_all: bool) -> None:
    """The first owner folds the first half and dies; the next starts OUTAGE_S later and idles
    a few seconds before the second half (held up by the same outage) arrives. Every trade of
    it counts: none is late, the candles equal the reference. (Counting the outage as quiet,
    the new owner's first tick closed every window, or the outage's span: all of it was late.)"""
    log, ticks = feed(2000, symbols=("BTCUSDT",))
    half = len(log) // 2
    ports = FakePorts(log[:half])  # market.trades as the next owner finds it
    wall_us = [ticks[0].time_us]

    def owner() -> CandleDriver:
        return CandleDriver(CandleFold(SPECS, GRACE), TickDecoder(CODEC), ports, idle_close_s=IDLE_CLOSE_S,
                            close_all_when_idle=close_all, wall_us=lambda: wall_us[0])

    async def quiet_for(driver: CandleDriver, seconds: int) -> None:
        for _ in range(seconds):
            wall_us[0] += 1_000_000
            await driver.close_idle()

    async def scenario() -> CandleDriver:
        await deliver(owner(), log, 0, half)
        wall_us[0] += OUTAGE_S * 1_000_000  # nobody folds; nothing is sent
        successor = owner()
        await quiet_for(successor, IDLE_CLOSE_S // 2)  # started, caught up, the feed not back yet
        ports.log.extend(log[half:])
        await deliver(successor, log, half, len(log))
        await quiet_for(successor, 6 * 60)  # the feed has ended: every window closes
        await successor.checkpoint()
        return successor

    successor = asyncio.run(scenario())
    everything = fold_reference(ticks, SPECS, GRACE, close_at_end=True)
    assert successor.states["BTCUSDT"].late == len(everything.late)  # the feed's own stragglers only
    assert published(ports) == {k: bar_summary(b) for k, b in everything.candles.items()}
