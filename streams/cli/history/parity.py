"""`ticktide parity`: is an isolated instance (a replay) the same as live? Exit 1 if not."""

from __future__ import annotations

from typing import Annotated

import typer

from domain.clock import to_micros
from streams.cli.options import BrokerOption, ConfigOption, settings_from
from streams.errors import InvalidInput
from streams.kafka.json_form import parse_time
from streams.tools.parity import Window, kinds_of, parity, render


def _time(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return to_micros(parse_time(text))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"--{name} must be a time (ISO 8601 or epoch seconds), got {text!r}: {exc}") from None


def parity_command(
    app: Annotated[str, typer.Option("--app", help="App id of the isolated instance (what `replay --into` made)")],
    start: Annotated[str | None, typer.Option("--from", help="TIME: first event time compared",
                                              show_default=False)] = None,
    stop: Annotated[str | None, typer.Option("--to", help="TIME: end of event time, exclusive",
                                             show_default=False)] = None,
    only: Annotated[str | None, typer.Option(
        "--only", help="Kinds to compare, e.g. enrichments,signals [default: every kind]", show_default=False)] = None,
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Compare APP with the live app over [--from, --to) of event time, kind by kind."""
    settings = settings_from(config, broker=broker)
    reports = parity(settings, app, Window(_time(start, "from"), _time(stop, "to")), kinds_of(only))
    for line in render(reports, app):
        print(line)
    different = [r.kind for r in reports if not r.equal]
    print(f"parity: {'DIFFERENT (' + ', '.join(different) + ')' if different else 'equal'}")
    if different:
        raise typer.Exit(1)
