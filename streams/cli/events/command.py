"""`ticktide command NAME [ARG=VALUE ...]`: send a user command (a typed record) to
user.commands, checked before it is sent."""

from __future__ import annotations

from typing import Annotated

import typer

from domain.rules.commands import COMMANDS, Problem, command_from_text
from schemas.records import utc_now
from streams.cli.options import BrokerOption, ConfigOption, settings_from
from streams.errors import InvalidInput
from streams.kafka.producer import EventProducer

MAX_ARGUMENTS = 8


def command_command(
    name: Annotated[str, typer.Argument(help=f"One of {', '.join(COMMANDS)}")],
    arguments: Annotated[list[str] | None, typer.Argument(
        help="NAME=VALUE: strategy=S, limit=L value=N, symbol=S; account=A on any (default: the trading account)")]
        = None,
    user: Annotated[str, typer.Option(help="Who asks (shown in the acknowledgement)")] = "cli",
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Send a user command; the ledger answers with CommandAcknowledged on trading.events.
    Example: ticktide command SetRiskLimit limit=max_position value=0.5"""
    given = arguments or []
    if len(given) > MAX_ARGUMENTS or any("=" not in a for a in given):
        raise InvalidInput(f"arguments are at most {MAX_ARGUMENTS} NAME=VALUE pairs, e.g. strategy=ema_cross")
    pairs = dict(a.split("=", 1) for a in given)
    command = command_from_text(name, pairs, user, event_time=utc_now(), producer="cli.command")
    if isinstance(command, Problem):
        raise InvalidInput(f"{command.field}: {command}")
    with EventProducer(settings_from(config, broker=broker)) as producer:
        producer.send("user.commands", command)
    print(f"sent {type(command).__name__} {command.envelope.event_id}")
