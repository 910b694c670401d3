"""The dashboard: a small HTML page at ``/`` (inline SVG charts, no outside scripts) and
``/dashboard/data``, the JSON it polls: system health, dead letters, symbols, and the
latest signals and enrichments (tables/names.py: ``SIGNALS``, ``ENRICHMENTS``).

Candles come from the existing ``/candles/{symbol}`` view (routed to the owning worker).
Symbols, signals and enrichments are those of this worker's table partitions: with several
workers, each dashboard shows its own partitions.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from faust.web import Request, Response, View

from streams.faust.context import WorkerApp
from streams.web.health import system_health
from tables import names

LATEST = 10


def latest_rows(app: WorkerApp, table_name: str) -> list[dict[str, Any]]:
    """The newest events kept in a table whose values are lists of events as JSON, newest
    first (KeyError if the worker declares no such table: a name nobody declares is a bug)."""
    table: Any = app.tables[table_name]
    found = [row for _, rows in table.items() for row in rows]
    found.sort(key=lambda row: str(row["envelope"]["event_time"]))
    return found[-LATEST:][::-1]


def install_dashboard(app: WorkerApp) -> None:
    """Mount ``/`` and ``/dashboard/data``."""
    page = resources.files("streams.web").joinpath("static/dashboard.html").read_bytes()

    @app.page("/")
    async def dashboard(web: View, request: Request) -> Response:
        return web.bytes(page, content_type="text/html")

    @app.page("/dashboard/data")
    async def data(web: View, request: Request) -> Response:
        system = await system_health(app)
        candles: Any = app.tables[names.CANDLES]
        held = set(app.candle_driver.states) if app.candle_driver else set()  # ahead of the rows
        symbols = sorted(held | {symbol for symbol, _ in names.symbol_rows(candles.items())})
        return web.json({"system": system, "deadletters": app.deadletters.total, "symbols": symbols,
                         "signals": latest_rows(app, names.SIGNALS),
                         "enrichments": latest_rows(app, names.ENRICHMENTS)})
