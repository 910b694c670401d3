"""User records (schemas/user/*.avsc): one imperative record per command, and the
free-text UserCommand they replaced."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from schemas.records.common import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCommand(Event):
    """Read only: a free-text command verb, replaced by the typed commands below; older
    records on user.commands and trading.commands still hold it."""

    AVRO_NAME: ClassVar[str] = "ticktide.user.UserCommand"
    command: str
    target: str | None = None
    arguments: dict[str, str] = field(default_factory=dict)
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseStrategy(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.PauseStrategy"
    user: str
    account: str | None = None
    strategy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeStrategy(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.ResumeStrategy"
    user: str
    account: str | None = None
    strategy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRiskLimit(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.SetRiskLimit"
    user: str
    account: str | None = None
    limit: str
    value: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class EngageKillSwitch(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.EngageKillSwitch"
    user: str
    account: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseKillSwitch(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.ReleaseKillSwitch"
    user: str
    account: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FlattenPosition(Event):
    AVRO_NAME: ClassVar[str] = "ticktide.user.FlattenPosition"
    user: str
    account: str | None = None
    symbol: str


Command = PauseStrategy | ResumeStrategy | SetRiskLimit | EngageKillSwitch | ReleaseKillSwitch | FlattenPosition
COMMAND_TYPES = (PauseStrategy, ResumeStrategy, SetRiskLimit, EngageKillSwitch, ReleaseKillSwitch, FlattenPosition)
"""The user commands, each its own record type."""
