"""market.trades -> tickers table."""

from __future__ import annotations

from faust import StreamT

from schemas.records import Trade
from streams.app import TickTideApp
from tables import tickers

AGENT = "market.trades"


def install(app: TickTideApp) -> None:
    """Register the trade agent and its table."""
    table = tickers.declare(app)
    source = app.typed_topics["market.trades"]

    @app.agent(source.faust, name=AGENT)
    async def track_trades(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            async with app.deadletters.guard(message, agent=AGENT):
                trade = app.codec.decode_as(message.value, Trade)
                tickers.update(table, trade, message.partition, message.offset)
            app.count_processed(AGENT)
