"""Parameters and bodies of web requests, checked before anything uses them: every bad
one raises BadParameter naming it (a view answers 400, or 413 for a body too large), and
each check is bounded (patterns on capped strings, capped body reads), so no request
can make a view do unbounded work or answer 500.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from faust.exceptions import SameNode
from faust.web import Request, Response, View

from domain.rules.commands import is_account, is_symbol
from streams.faust.context import WorkerApp

MAX_LIMIT = 1000
MAX_BODY_BYTES = 16 * 1024
"""Largest request body read (POST /commands): a command is a few hundred bytes."""
MAX_QUERY_TEXT = 64
_LIMIT = re.compile(r"[0-9]{1,4}")
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


class BadParameter(ValueError):
    """A query parameter, path part or body a view cannot use (answered with 400)."""

    def __init__(self, parameter: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.status = status


def error(web: View, status: int, message: str, **extra: Any) -> Response:
    """A JSON error answer."""
    return web.json({"error": message, **extra}, status=status)


def bad(web: View, exc: BadParameter) -> Response:
    """The answer to a BadParameter: its status, message and the parameter's name."""
    return error(web, exc.status, str(exc), parameter=exc.parameter)


def _shown(text: str) -> str:
    return repr(text[:MAX_QUERY_TEXT] + ("..." if len(text) > MAX_QUERY_TEXT else ""))


def only_params(request: Request, allowed: Collection[str]) -> None:
    """Refuse query parameters the view does not take, and repeated ones."""
    seen: set[str] = set()
    for name, _ in request.query.items():  # each key as often as given (keys() may not repeat)
        if name not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            raise BadParameter(name[:MAX_QUERY_TEXT], f"unknown query parameter {_shown(name)} (known: {known})")
        if name in seen:
            raise BadParameter(name, f"query parameter {name} is given more than once")
        seen.add(name)


def query_text(request: Request, name: str, max_chars: int = MAX_QUERY_TEXT) -> str | None:
    """A query parameter as given (None if absent), at most ``max_chars`` long."""
    text = request.query.get(name)
    if text is not None and len(text) > max_chars:
        raise BadParameter(name, f"{name} must be at most {max_chars} characters")
    return text


def query_interval(request: Request, allowed: list[str]) -> str:
    """The `interval` parameter, one of the configured windows (default: the 2nd, or 1st)."""
    interval = query_text(request, "interval") or allowed[min(1, len(allowed) - 1)]
    if interval not in allowed:
        raise BadParameter("interval", f"interval must be one of {', '.join(allowed)}, got {_shown(interval)}")
    return interval


def query_limit(request: Request, default: int = 100) -> int:
    """The `limit` parameter: an integer in [1, MAX_LIMIT] in ASCII digits (checked by
    pattern before int(): unicode digits such as '²' pass str.isdigit but not int())."""
    text = request.query.get("limit")
    if text is None:
        return default
    if _LIMIT.fullmatch(text) is None or not 1 <= int(text) <= MAX_LIMIT:
        raise BadParameter("limit", f"limit must be an integer from 1 to {MAX_LIMIT}, got {_shown(text)}")
    return int(text)


def query_symbol(request: Request) -> str:
    """The required `symbol` query parameter (a valid market symbol)."""
    text = request.query.get("symbol")
    if not text:
        raise BadParameter("symbol", "symbol is required, e.g. ?symbol=BTCUSDT")
    return symbol_param(text)


def symbol_param(text: str, name: str = "symbol") -> str:
    """A symbol from a path or query: 1-32 letters, digits and . _ / : -."""
    if not is_symbol(text):
        raise BadParameter(name, f"{name} must be 1-32 letters, digits, '.', '_', '/', ':' or '-', "
                                 f"starting with a letter or digit; got {_shown(text)}")
    return text


def account_param(text: str, name: str = "account") -> str:
    """An account name from a path or query."""
    if not is_account(text):
        raise BadParameter(name, f"{name} must be 1-64 letters, digits, '.', '_' or '-', "
                                 f"starting with a letter or digit; got {_shown(text)}")
    return text


def order_id_param(text: str) -> str:
    """An order id from the path: 1-200 letters, digits and . _ : -."""
    if _ORDER_ID.fullmatch(text) is None:
        raise BadParameter("order_id", f"order_id must be 1-200 letters, digits, '.', '_', ':' or '-'; "
                                       f"got {_shown(text)}")
    return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def json_object(request: Request, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request body as a JSON object: content type application/json, at most
    ``max_bytes`` (413 beyond), UTF-8, no NaN/Infinity, not nested too deep."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise BadParameter("Content-Type", "the body must be JSON (Content-Type: application/json)")
    declared = request.headers.get("Content-Length")
    if declared is not None and (not declared.isascii() or not declared.isdigit()
                                 or len(declared) > 12 or int(declared) > max_bytes):
        raise BadParameter("body", f"the body must be at most {max_bytes} bytes", 413)
    body = bytearray()
    while chunk := await request.content.read(max_bytes + 1 - len(body)):  # type: ignore[attr-defined]
        body += chunk
        if len(body) > max_bytes:
            raise BadParameter("body", f"the body must be at most {max_bytes} bytes", 413)
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise BadParameter("body", "the body is not UTF-8") from None
    except RecursionError:
        raise BadParameter("body", "the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer of too many digits
        raise BadParameter("body", f"the body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise BadParameter("body", f"the body must be a JSON object, not {type(value).__name__}")
    return value


async def routed(app: WorkerApp, table: str, key: str, web: View, request: Request) -> Response | None:
    """The owning worker's answer for ``key`` of ``table`` (Faust's table routing), or
    None when this worker owns it. Call it after the key is checked."""
    try:
        answer: Response = await app.router.route_req(table, key, web.web, request)
        return answer
    except SameNode:
        return None


View_ = Callable[..., Awaitable[Response]]


def answers_bad_parameters(view: View_) -> View_:
    """A view handler that answers 400 (naming the parameter) for a BadParameter it raises."""

    @functools.wraps(view)
    async def checked(web: View, request: Request, **parts: Any) -> Response:
        try:
            return await view(web, request, **parts)
        except BadParameter as exc:
            return bad(web, exc)

    return checked


async def answer_for_key(app: WorkerApp, table: str, key: str, web: View, request: Request,
                         answer: Callable[[Any], Response], missing: str | None = None,
                         held: Callable[[str], Any] | None = None) -> Response:
    """A query for ``key`` of ``table`` (checked already): the owning worker's answer, else
    ``answer(row)`` here, the row from ``held`` (the owner's memory, ahead of the table) when
    it has one; 404 with ``missing`` when given and this worker has no row."""
    owner = await routed(app, table, key, web, request)
    if owner is not None:
        return owner
    row = held(key) if held is not None else None
    if row is None:
        rows: Any = app.tables[table]
        row = rows.get(key)
    if row is None and missing is not None:
        return error(web, 404, missing)
    return answer(row)
