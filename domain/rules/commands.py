"""What a valid user command is (pure, one place).

Each command is its own record type (schemas.records: PauseStrategy, ResumeStrategy,
SetRiskLimit, EngageKillSwitch, ReleaseKillSwitch, FlattenPosition). ``command_rules``
gives the field rules of each type (domain/rules/validity.py checks them on both sides of every
topic); ``command_from_text`` builds a typed command from the text a person types (the
web body, a CLI line), checking every raw string BEFORE any conversion, so work on a
hostile value (``value=1e1000000``, a megabyte of digits) is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.rules.fields import ACCOUNT_RULE, SYMBOL_RULE, Rule, amount, optional, show, text
from domain.strategy.strategies import STRATEGIES
from schemas.records import (
    COMMAND_TYPES,
    Command,
    EngageKillSwitch,
    Event,
    FlattenPosition,
    PauseStrategy,
    ReleaseKillSwitch,
    ResumeStrategy,
    SetRiskLimit,
)

MAX_ORDERS_PER_MINUTE = 1000
"""Largest orders-per-minute limit (the ledger keeps this many order times)."""
MAX_TEXT = 64
"""Longest command name or user shown back."""
MAX_NUMBER_CHARS = 39
"""A number argument longer than this is refused before it is parsed."""
LIMIT_NAMES = ("max_position", "max_gross_exposure", "max_orders_per_minute")

COMMANDS: dict[str, type[Command]] = {cls.__name__: cls for cls in COMMAND_TYPES}
"""Every user command by its record name."""
ARGUMENTS: dict[type[Event], tuple[str, ...]] = {
    PauseStrategy: ("strategy",), ResumeStrategy: ("strategy",), SetRiskLimit: ("limit", "value"),
    EngageKillSwitch: (), ReleaseKillSwitch: (), FlattenPosition: ("symbol",),
}
"""The arguments each command takes besides ``account`` (optional on every one)."""
_LEGACY = {"pause_strategy": "PauseStrategy", "resume_strategy": "ResumeStrategy",
           "set_risk_limit": "SetRiskLimit", "flatten": "FlattenPosition"}
"""The free-text verbs that came before the typed commands (``kill_switch state=on|off``
is EngageKillSwitch / ReleaseKillSwitch)."""

NUMBER = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,18})?")
"""A non-negative plain decimal: no sign, exponent, NaN or Infinity; fits decimal(38, 18)."""
INTEGER = re.compile(r"[0-9]{1,4}")
USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:/-]{0,63}")
"""A user name: 1-64 letters, digits, spaces and . _ @ : / -."""
USER_RULE = text(64, pattern=USER)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a command is refused, and the field it is about (``value``, ``strategy``, ...)."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


def is_symbol(value: object) -> bool:
    """A valid market symbol (the Trade rule of domain/rules/validity.py)."""
    return SYMBOL_RULE(value) is None


def is_account(value: object) -> bool:
    """A valid account name (domain/rules/validity.py)."""
    return ACCOUNT_RULE(value) is None


def _strategy(value: Any) -> str | None:
    return None if isinstance(value, str) and value in STRATEGIES else \
        f"is not a strategy ({', '.join(STRATEGIES)}): {show(value)}"


def _limit(value: Any) -> str | None:
    return None if isinstance(value, str) and value in LIMIT_NAMES else \
        f"is not a risk limit ({', '.join(LIMIT_NAMES)}): {show(value)}"


def command_rules(kind: type[Event]) -> dict[str, Rule]:
    """The field rules of a user command type (empty for any other type)."""
    if kind not in ARGUMENTS:
        return {}
    rules: dict[str, Rule] = {"user": USER_RULE, "account": optional(ACCOUNT_RULE)}
    named: dict[str, Rule] = {"strategy": _strategy, "limit": _limit, "value": amount(positive=False),
                              "symbol": SYMBOL_RULE}
    return {**rules, **{name: named[name] for name in ARGUMENTS[kind]}}


def limit_problem(limit: str, value: Decimal) -> str | None:
    """Why ``value`` is not a valid setting of ``limit`` (across fields: None if it is)."""
    if limit == "max_orders_per_minute" and (value != value.to_integral_value() or value > MAX_ORDERS_PER_MINUTE):
        return f"must be a whole number from 0 to {MAX_ORDERS_PER_MINUTE} for max_orders_per_minute"
    return None


def command_name(name: object, arguments: Mapping[str, object]) -> str | Problem:
    """The record name a typed or legacy command name stands for."""
    if not isinstance(name, str) or len(name) > MAX_TEXT:
        return Problem("command", f"command must be one of {', '.join(COMMANDS)}")
    if name == "kill_switch":
        state = arguments.get("state")
        if state not in ("on", "off"):
            return Problem("arguments.state", "state must be on or off")
        return "EngageKillSwitch" if state == "on" else "ReleaseKillSwitch"
    name = _LEGACY.get(name, name)
    if name not in COMMANDS:
        return Problem("command", f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    return name


def command_from_text(name: object, arguments: Mapping[str, object], user: object, *,
                      event_time: datetime, producer: str, event_id: str | None = None) -> Command | Problem:
    """The typed command ``name arguments`` stands for (record names, or the legacy verbs),
    or why it is not one. Only pattern matches and comparisons on bounded strings before
    anything is converted: cheap whatever is sent."""
    found = command_name(name, arguments)
    if isinstance(found, Problem):
        return found
    cls = COMMANDS[found]
    takes = ARGUMENTS[cls]
    legacy = ("state",) if name == "kill_switch" else ()
    for key in arguments:
        if key not in takes and key != "account" and key not in legacy:
            shown = key[:MAX_TEXT] if isinstance(key, str) else type(key).__name__
            return Problem("arguments", f"unknown argument {shown!r} for {found}; "
                                        f"it takes {', '.join((*takes, 'account'))}")
    for key in takes:
        if key not in arguments:
            return Problem(f"arguments.{key}", f"{found} needs argument {key}")
    values: dict[str, Any] = {}
    for key, value in arguments.items():
        if key in legacy:
            continue
        if not isinstance(value, str):
            return Problem(f"arguments.{key}", f"{key} must be a string")
        if key == "value":
            if len(value) > MAX_NUMBER_CHARS or NUMBER.fullmatch(value) is None:
                return Problem("arguments.value", (
                    "value must be a plain non-negative number (digits, at most 20 before and 18 after the "
                    f"point, at most {MAX_NUMBER_CHARS} characters; no sign, exponent, NaN or Infinity)"))
            values[key] = Decimal(value)
        else:
            values[key] = value
    for key, rule in command_rules(cls).items():
        problem = rule(user if key == "user" else values.get(key))
        if problem is not None:
            return Problem("user" if key == "user" else f"arguments.{key}", f"{key} {problem}")
    if cls is SetRiskLimit:
        problem = limit_problem(values["limit"], values["value"])
        if problem is not None:
            return Problem("arguments.value", f"value {problem}")
    envelope = cls.envelope_for(event_time=event_time, producer=producer, event_id=event_id)
    return cls(envelope=envelope, user=str(user), **values)


def command_arguments(command: Command) -> dict[str, str]:
    """A command's arguments as text (what CommandAcknowledged shows and folds)."""
    shown: dict[str, str] = {}
    for key in (*ARGUMENTS[type(command)], "account"):
        value = getattr(command, key, None)
        if value is not None:
            shown[key] = plain(value) if isinstance(value, Decimal) else str(value)
    return shown


def plain(value: Decimal) -> str:
    """A decimal as plain digits, no exponent or trailing zeros (``5.000`` -> ``5``)."""
    shown = format(value.normalize(), "f")
    return "0" if shown in ("-0", "0") else shown


def limit_value(limit: str, value: str) -> Decimal | int | None:
    """A risk-limit override as a number, or None if it is not a valid one (an override
    read from an old or forged row is ignored rather than parsed unbounded)."""
    if limit not in LIMIT_NAMES or not isinstance(value, str) or len(value) > MAX_NUMBER_CHARS \
            or NUMBER.fullmatch(value) is None:
        return None
    number = Decimal(value)
    if limit_problem(limit, number) is not None:
        return None
    return int(number) if limit == "max_orders_per_minute" else number
