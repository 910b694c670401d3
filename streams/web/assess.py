"""GET /assess/{symbol}: a fresh assessment on demand, asked of the enrichment's assess
agent (Faust ask/reply), or 504 after ``assess_timeout_s``. Each client address may ask
``assess_rate_per_min`` times a minute (bursts of ``assess_burst``); beyond that, 429
with Retry-After, before anything is asked of Claude."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from faust.web import Request, Response, View

from domain.ops.rate_limit import RateLimiter, retry_after
from streams.faust.context import WorkerApp
from streams.web.params import BadParameter, bad, error, only_params, symbol_param

MAX_CLIENTS = 10_000
"""Client addresses whose buckets are remembered (the oldest are forgotten)."""


def install_assess(app: WorkerApp, agent: Any) -> None:
    """Mount the view; ``agent`` answers a symbol with {"status": int, "body": {...}}."""
    app.conf.reply_create_topic = True  # the reply topic of ask() must exist on any broker
    settings = app.settings
    limiter = RateLimiter(settings.assess_rate_per_min / 60.0, settings.assess_burst, MAX_CLIENTS)

    @app.page("/assess/{symbol}")
    async def assess(web: View, request: Request, symbol: str) -> Response:
        try:
            only_params(request, ())
            symbol = symbol_param(symbol).upper()
        except BadParameter as exc:
            return bad(web, exc)
        wait = limiter.take(str(getattr(request, "remote", None) or "unknown"), time.monotonic())
        if wait:
            return web.json({"error": f"too many assessments asked from this address: at most "
                                      f"{settings.assess_rate_per_min:g} a minute",
                             "retry_after_s": float(retry_after(wait))},
                            status=429, headers={"Retry-After": retry_after(wait)})
        try:
            reply = await asyncio.wait_for(agent.ask(key=symbol.encode(), value=symbol),
                                           settings.assess_timeout_s)
        except TimeoutError:
            return error(web, 504, f"no assessment of {symbol} within {settings.assess_timeout_s:g} s")
        return web.json(reply["body"], status=int(reply["status"]))
