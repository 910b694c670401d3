"""What a valid user command is (pure, one place): its name, the arguments it takes and
the pattern and range of each, checked on the raw strings BEFORE any conversion, so work
on a hostile value (``value=1e1000000``, a megabyte of digits) is bounded. The web view,
the agents and the ledger fold all use these rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from domain.field_rules import ACCOUNT_RULE, SYMBOL_RULE
from domain.strategy import STRATEGIES

MAX_ORDERS_PER_MINUTE = 1000
"""Largest orders-per-minute limit (the ledger keeps this many order times)."""
MAX_TEXT = 64
"""Longest command name, user or target."""
MAX_NUMBER_CHARS = 32
"""A number argument longer than this is refused before it is parsed."""
LIMIT_NAMES = ("max_position", "max_gross_exposure", "max_orders_per_minute")
COMMANDS: dict[str, tuple[str, ...]] = {
    "pause_strategy": ("strategy",),
    "resume_strategy": ("strategy",),
    "set_risk_limit": ("limit", "value"),
    "kill_switch": ("state",),
    "flatten": ("symbol",),
}
"""Each command and its required arguments; ``account`` is optional on every one."""
OPTIONAL = ("account",)

NUMBER = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,18})?")
"""A non-negative plain decimal: no sign, exponent, NaN or Infinity; fits decimal(38, 18)."""
INTEGER = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a command is refused, and the field it is about (``arguments.value``, ...)."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


def is_symbol(text: object) -> bool:
    """A valid market symbol (the Trade rule of domain/validity.py)."""
    return SYMBOL_RULE(text) is None


def is_account(text: object) -> bool:
    """A valid account name (domain/validity.py)."""
    return ACCOUNT_RULE(text) is None


TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:/-]{0,63}")
"""A user name or a target: 1-64 letters, digits, spaces and . _ @ : / -."""


def check_user_command(command: str, arguments: Mapping[str, str], user: str,
                       target: str | None = None) -> Problem | None:
    """Why a whole user command (name, arguments, user, target) is not valid (None if it is)."""
    if not isinstance(user, str) or TEXT.fullmatch(user) is None:
        return Problem("user", "user must be 1-64 letters, digits, spaces or . _ @ : / -, "
                               "starting with a letter or digit")
    if target is not None and (not isinstance(target, str) or TEXT.fullmatch(target) is None):
        return Problem("target", "target must be 1-64 letters, digits, spaces or . _ @ : / -, "
                                 "starting with a letter or digit")
    return check_command(command, arguments)


def check_command(command: str, arguments: Mapping[str, str]) -> Problem | None:
    """Why ``command arguments`` is not a valid user command (None if it is). Only
    pattern matches and comparisons on bounded strings: cheap whatever is sent."""
    if not isinstance(command, str) or len(command) > MAX_TEXT or command not in COMMANDS:
        shown = command[:MAX_TEXT] if isinstance(command, str) else type(command).__name__
        return Problem("command", f"unknown command {shown!r}; known: {', '.join(COMMANDS)}")
    required = COMMANDS[command]
    for name in arguments:
        if name not in required and name not in OPTIONAL:
            shown = name[:MAX_TEXT] if isinstance(name, str) else type(name).__name__
            return Problem("arguments", f"unknown argument {shown!r} for {command}; "
                                        f"it takes {', '.join((*required, *OPTIONAL))}")
    for name in required:
        if name not in arguments:
            return Problem(f"arguments.{name}", f"{command} needs argument {name}")
    for name, value in arguments.items():
        problem = _check_argument(name, value)
        if problem is not None:
            return Problem(f"arguments.{name}", problem)
    if command == "set_risk_limit":
        return _check_limit(arguments["limit"], arguments["value"])
    return None


def _check_argument(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be a string"
    if name == "account" and not is_account(value):
        return "account must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    if name == "symbol" and not is_symbol(value):
        return "symbol must be 1-32 letters, digits, '.', '_', '/', ':' or '-', starting with a letter or digit"
    if name == "strategy" and value not in STRATEGIES:
        return f"strategy must be one of {', '.join(STRATEGIES)}"
    if name == "state" and value not in ("on", "off"):
        return "state must be on or off"
    if name == "limit" and value not in LIMIT_NAMES:
        return f"limit must be one of {', '.join(LIMIT_NAMES)}"
    if name == "value" and (len(value) > MAX_NUMBER_CHARS or NUMBER.fullmatch(value) is None):
        return ("value must be a plain non-negative number (digits, at most 20 before and 18 after "
                f"the point, at most {MAX_NUMBER_CHARS} characters; no sign, exponent, NaN or Infinity)")
    return None


def _check_limit(limit: str, value: str) -> Problem | None:
    if limit == "max_orders_per_minute" and (
            INTEGER.fullmatch(value) is None or int(value) > MAX_ORDERS_PER_MINUTE):
        return Problem("arguments.value", f"value must be an integer from 0 to {MAX_ORDERS_PER_MINUTE}")
    return None


def limit_value(limit: str, value: str) -> Decimal | int | None:
    """A risk-limit override as a number, or None if it is not a valid one (an override
    read from an old or forged row is ignored rather than parsed unbounded)."""
    if _check_argument("limit", limit) or _check_argument("value", value) or _check_limit(limit, value):
        return None
    return int(value) if limit == "max_orders_per_minute" else Decimal(value)
