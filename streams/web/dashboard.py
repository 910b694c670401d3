"""The dashboard: a small HTML page at ``/`` (inline SVG charts, no outside scripts) and
``/dashboard/data``, the JSON it polls: system health, dead letters, symbols, and the
latest signals and enrichments when their tables exist (empty lists otherwise).

Candles come from the existing ``/candles/{symbol}`` view (routed to the owning worker).
Symbols are those of the candles table on this worker: with several workers, each
dashboard shows the symbols of its own partitions.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from streams.web.ops import system_health

if TYPE_CHECKING:
    from streams.faust.app import TickTideApp

CANDLES = "candles"
SIGNAL_TABLES = ("signals", "latest_signals")
ENRICHMENT_TABLES = ("enrichments", "latest_enrichments")
LATEST = 10


def _latest(app: TickTideApp, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The newest rows of the first of ``names`` that is a table (list or dict values)."""
    for name in names:
        table: Any = app.tables.get(name)
        if table is None:
            continue
        found: list[dict[str, Any]] = []
        for _, value in table.items():
            rows = value if isinstance(value, list) else [value]
            found.extend(row for row in rows if isinstance(row, dict))
        found.sort(key=lambda row: str((row.get("envelope") or {}).get("event_time", "")))
        return found[-LATEST:][::-1]
    return []


def install_dashboard(app: TickTideApp) -> None:
    """Mount ``/`` and ``/dashboard/data``."""
    page = resources.files("streams.web").joinpath("static/dashboard.html").read_bytes()

    @app.page("/")
    async def dashboard(web: View, request: Request) -> Response:
        return web.bytes(page, content_type="text/html")

    @app.page("/dashboard/data")
    async def data(web: View, request: Request) -> Response:
        system = await system_health(app)
        candles: Any = app.tables.get(CANDLES)
        symbols = sorted(key for key, _ in candles.items()  # '#...': internal progress rows
                         if not key.startswith("#")) if candles is not None else []
        return web.json({"system": system, "deadletters": app.deadletters.total, "symbols": symbols,
                         "signals": _latest(app, SIGNAL_TABLES),
                         "enrichments": _latest(app, ENRICHMENT_TABLES)})
