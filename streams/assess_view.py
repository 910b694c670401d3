"""GET /assess/{symbol}: a fresh assessment on demand, asked of the enrichment's assess
agent (Faust ask/reply), or 504 after ``assess_timeout_s``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

if TYPE_CHECKING:
    from streams.app import TickTideApp


def install_assess(app: TickTideApp, agent: Any) -> None:
    """Mount the view; ``agent`` answers a symbol with {"status": int, "body": {...}}."""
    app.conf.reply_create_topic = True  # the reply topic of ask() must exist on any broker

    @app.page("/assess/{symbol}")
    async def assess(web: View, request: Request, symbol: str) -> Response:
        symbol = symbol.strip().upper()
        if not symbol.isalnum() or len(symbol) > 32:
            return web.json({"error": "symbol must be letters and digits", "parameter": "symbol"},
                            status=400)
        try:
            reply = await asyncio.wait_for(agent.ask(key=symbol.encode(), value=symbol),
                                           app.settings.assess_timeout_s)
        except TimeoutError:
            return web.json({"error": f"no assessment of {symbol} within "
                                      f"{app.settings.assess_timeout_s:g} s"}, status=504)
        return web.json(reply["body"], status=int(reply["status"]))
