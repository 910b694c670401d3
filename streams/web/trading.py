"""Trading web views: /portfolio/{account}, /orders/{order_id}, /signals?symbol=&limit=,
and, only when an API token is configured, POST /commands (it requires the token).

Each query is routed to the worker that owns its key (the account, or the symbol); an
order is found through its account (the ``account:`` prefix of its id, or ``?account=``).
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Any

from faust.web import Request, Response, View

from domain.rules.commands import Problem, command_from_text
from domain.trading import ledger_rows
from domain.trading.orders import account_of_order
from schemas.records import Command, utc_now
from streams.faust.context import WorkerApp
from streams.web.params import (
    BadParameter,
    account_param,
    answer_for_key,
    answers_bad_parameters,
    bad,
    error,
    json_object,
    only_params,
    order_id_param,
    query_limit,
    query_symbol,
    query_text,
)
from tables.names import PORTFOLIO, SIGNALS

BODY_FIELDS = frozenset({"command", "arguments", "user"})
MAX_ARGUMENTS = 8
MAX_AUTHORIZATION = 1024


def portfolio_view(row: dict[str, Any]) -> dict[str, Any]:
    """A portfolio row as users see it (unrealised P&L at the latest market marks)."""
    state = ledger_rows.from_row(row["portfolio"])
    prices = {symbol: Decimal(price) for symbol, price in row["prices"].items()}
    return {**ledger_rows.summary(state, prices),
            "open_orders": [o for o in row["portfolio"]["orders"].values() if o["status"] == "OPEN"]}


def bearer_token(header: str | None) -> bytes | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (scheme case-insensitive),
    as bytes to compare in constant time; None if the header is missing or not Bearer."""
    if not header or len(header) > MAX_AUTHORIZATION:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip().encode("utf-8", "replace")


def command_from_body(body: dict[str, Any]) -> Command:
    """The typed user command of a POST /commands body (``command``: PauseStrategy,
    ResumeStrategy, SetRiskLimit, EngageKillSwitch, ReleaseKillSwitch, FlattenPosition, or
    the older verbs; ``arguments``: its fields as strings; optional ``user``), every field
    checked (BadParameter)."""
    unknown = sorted(set(body) - BODY_FIELDS)
    if unknown:
        raise BadParameter(str(unknown[0])[:64], f"unknown field {str(unknown[0])[:64]!r}; "
                                                 f"a command has {', '.join(sorted(BODY_FIELDS))}")
    name, arguments, user = body.get("command"), body.get("arguments", {}), body.get("user", "web")
    if not isinstance(name, str) or not name:
        raise BadParameter("command", "command is required and must be a string")
    if not isinstance(arguments, dict) or len(arguments) > MAX_ARGUMENTS:
        raise BadParameter("arguments", f"arguments must be an object of at most {MAX_ARGUMENTS} strings")
    for key, value in arguments.items():
        if not isinstance(value, str):
            raise BadParameter(f"arguments.{key[:64]}", f"argument {key[:64]!r} must be a string")
    if not isinstance(user, str):
        raise BadParameter("user", "user must be a string")
    command = command_from_text(name, arguments, user, event_time=utc_now(), producer="web.commands")
    if isinstance(command, Problem):
        raise BadParameter(command.field, str(command))
    return command


def install_trading_views(app: WorkerApp) -> None:
    """Mount the trading views."""

    @app.page("/portfolio/{account}")
    @answers_bad_parameters
    async def portfolio(web: View, request: Request, account: str) -> Response:
        only_params(request, ())
        account = account_param(account)
        return await answer_for_key(app, PORTFOLIO, account, web, request,
                                    lambda row: web.json(portfolio_view(row)), f"unknown account {account!r}")

    @app.page("/orders/{order_id}")
    @answers_bad_parameters
    async def order(web: View, request: Request, order_id: str) -> Response:
        only_params(request, ("account",))
        order_id = order_id_param(order_id)
        account = query_text(request, "account") or account_of_order(order_id)
        if not account:
            raise BadParameter("account", "account is required for this order id: /orders/ID?account=NAME")
        account = account_param(account)

        def shown(row: dict[str, Any] | None) -> Response:
            found = (row or {}).get("portfolio", {}).get("orders", {}).get(order_id)
            if found is None:
                return error(web, 404, f"unknown order {order_id!r} in account {account!r}")
            return web.json({"account": account, **found})

        return await answer_for_key(app, PORTFOLIO, account, web, request, shown)

    @app.page("/signals")
    @answers_bad_parameters
    async def signal_list(web: View, request: Request) -> Response:
        only_params(request, ("symbol", "limit"))
        symbol, limit = query_symbol(request), query_limit(request)
        return await answer_for_key(app, SIGNALS, symbol, web, request,
                                    lambda rows: web.json({"symbol": symbol, "signals": (rows or [])[-limit:]}))

    if app.settings.api_token is None:
        return
    token = app.settings.api_token.get_secret_value().encode()

    class Commands(View):
        """POST /commands: a user command, produced to user.commands (Bearer token required)."""

        async def post(self, request: Request, **_: Any) -> Response:
            given = bearer_token(request.headers.get("Authorization"))
            if given is None or not hmac.compare_digest(given, token):
                return web_json_401(self)
            try:
                command = command_from_body(await json_object(request))
            except BadParameter as exc:
                return bad(self, exc)
            await app.typed_topics["user.commands"].send(command)
            return self.json({"accepted": True, "command_id": command.envelope.event_id}, status=202)

    app.page("/commands")(Commands)


def web_json_401(web: View) -> Response:
    """401 with a JSON error that says nothing about the token."""
    return web.json({"error": "a valid API token is required (Authorization: Bearer TOKEN)"}, status=401,
                    headers={"WWW-Authenticate": "Bearer"})
