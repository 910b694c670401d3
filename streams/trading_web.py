"""Trading web views: /portfolio/{account}, /orders/{order_id}, /signals?symbol=&limit=,
and, only when an API token is configured, POST /commands (it requires the token).

Each query is routed to the worker that owns its key (the account, or the symbol); an
order is found through its account (the ``account:`` prefix of its id, or ``?account=``).
"""

from __future__ import annotations

import hmac
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from faust.exceptions import SameNode
from faust.web import Request, Response, View

from domain import ledger_rows
from domain.orders import account_of_order
from schemas.records import UserCommand, utc_now

if TYPE_CHECKING:
    from streams.app import TickTideApp

PORTFOLIO = "portfolio"
SIGNALS = "signals"


def _error(web: View, status: int, message: str, **extra: Any) -> Response:
    return web.json({"error": message, **extra}, status=status)


def portfolio_view(row: dict[str, Any]) -> dict[str, Any]:
    """A portfolio row as users see it (unrealised P&L at the latest market marks)."""
    state = ledger_rows.from_row(row["portfolio"])
    prices = {symbol: Decimal(price) for symbol, price in row["prices"].items()}
    return {**ledger_rows.summary(state, prices),
            "open_orders": [o for o in row["portfolio"]["orders"].values() if o["status"] == "OPEN"]}


def install_trading_views(app: TickTideApp, query_limit: Any) -> None:
    """Mount the trading views (when the trading tables exist)."""
    if PORTFOLIO not in app.tables or SIGNALS not in app.tables:
        return
    portfolios: Any = app.tables[PORTFOLIO]
    signals: Any = app.tables[SIGNALS]

    async def routed(table: str, key: str, web: View, request: Request) -> Response | None:
        try:
            return await app.router.route_req(table, key, web.web, request)
        except SameNode:
            return None

    @app.page("/portfolio/{account}")
    @app.table_route(table=portfolios, match_info="account")
    async def portfolio(web: View, request: Request, account: str) -> Response:
        row = portfolios.get(account)
        if row is None:
            return _error(web, 404, f"unknown account {account!r}")
        return web.json(portfolio_view(row))

    @app.page("/orders/{order_id}")
    async def order(web: View, request: Request, order_id: str) -> Response:
        account = request.query.get("account") or account_of_order(order_id)
        if not account:
            return _error(web, 400, "account is required for this order id: /orders/ID?account=NAME",
                          parameter="account")
        answer = await routed(PORTFOLIO, account, web, request)
        if answer is not None:
            return answer
        found = (portfolios.get(account) or {}).get("portfolio", {}).get("orders", {}).get(order_id)
        if found is None:
            return _error(web, 404, f"unknown order {order_id!r} in account {account!r}")
        return web.json({"account": account, **found})

    @app.page("/signals")
    async def signal_list(web: View, request: Request) -> Response:
        symbol = request.query.get("symbol")
        if not symbol:
            return _error(web, 400, "symbol is required: /signals?symbol=BTCUSDT", parameter="symbol")
        try:
            limit = query_limit(request)
        except ValueError as exc:
            return _error(web, 400, str(exc), parameter="limit")
        answer = await routed(SIGNALS, symbol, web, request)
        if answer is not None:
            return answer
        return web.json({"symbol": symbol, "signals": (signals.get(symbol) or [])[-limit:]})

    if app.settings.api_token is None:
        return
    token = app.settings.api_token.get_secret_value()

    class Commands(View):
        """POST /commands: a user command, produced to user.commands (token required)."""

        async def post(self, request: Request, **_: Any) -> Response:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _error(self, 401, "a valid API token is required (Authorization: Bearer TOKEN)")
            try:
                body = json.loads(await request.read())
                command = UserCommand(
                    envelope=UserCommand.envelope_for(event_time=utc_now(), producer="web.commands"),
                    command=str(body["command"]), target=body.get("target"),
                    arguments={str(k): str(v) for k, v in (body.get("arguments") or {}).items()},
                    user=str(body.get("user") or "web"))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return _error(self, 400, f"bad command body: {exc}")
            await app.typed_topics["user.commands"].send(command)
            return self.json({"accepted": True, "command_id": command.envelope.event_id}, status=202)

    app.page("/commands")(Commands)
