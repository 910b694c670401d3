"""The root `ticktide` app: every command registered, and the entry point."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from typing import Annotated

import typer
import typer.core

from streams.cli import enrich, schemas
from streams.cli.events import command, consume, produce
from streams.cli.history import dlq, explain, parity, rebuild, replay
from streams.cli.stack import broker, dev, topics, worker
from streams.errors import ConfigError, TickTideError

app = typer.Typer(
    name="ticktide",
    help="Kafka stream processing for market data: typed Avro topics, Faust agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain text: "[env X, default Y]" is shown, not read as markup
)
app.command("broker")(broker.broker)
app.command("worker")(worker.worker)
app.command("produce")(produce.produce)
app.command("consume")(consume.consume)
app.command("dev")(dev.dev)
app.add_typer(topics.app, name="topics")
app.add_typer(rebuild.app, name="rebuild")
app.command("replay")(replay.replay_command)
app.command("parity")(parity.parity_command)
app.command("explain")(explain.explain_command)
app.command("command")(command.command_command)
app.add_typer(dlq.app, name="dlq")
app.add_typer(schemas.app, name="schemas")
app.add_typer(enrich.app, name="enrich")


def version_text() -> str:
    """``ticktide X.Y.Z`` of the installed distribution."""
    try:
        return f"ticktide {installed_version('ticktide')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "ticktide (not installed)"


def _show_version(given: bool) -> None:
    if given:
        print(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_show_version,
                                          help="Print the version and exit")] = False,
) -> None:
    """Kafka stream processing for market data: typed Avro topics, Faust agents."""


def _plain_help() -> None:
    """Help without Typer's ``<type>`` tags: an option that takes a value shows its
    metavar (``--from FROM``), a flag nothing beside its name, as click and kcat users know."""
    def argument_type(self: typer.core.TyperArgument, ctx: object) -> str | None:
        return None

    def option_type(self: typer.core.TyperOption, ctx: object) -> str | None:
        if self.is_flag:
            return None
        described = self.type_descriptor
        if self.metavar is None and described.is_choice and described.choices:
            return "|".join(str(getattr(c, "value", c)) for c in described.choices)
        long = next((o for o in self.opts if o.startswith("--")), self.opts[0])
        return self.metavar or long.lstrip("-").replace("-", "_").upper()

    typer.core.TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign,assignment]
    typer.core.TyperArgument.display_type = argument_type  # type: ignore[method-assign,assignment]
    typer.core.TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    typer.core.TyperOption.display_type = option_type  # type: ignore[method-assign,assignment]


def _quiet_broken_pipe() -> None:
    """The reader went away (`ticktide consume ... | head -1`): end quietly, as `cat` does.
    Python would print a traceback, then another one flushing stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool the pipe ended


def main() -> None:
    """Entry point: run a command; a ticktide error becomes one line and an exit code."""
    _plain_help()
    try:
        app()
    except BrokenPipeError:
        _quiet_broken_pipe()
    except ConfigError as exc:
        print(f"ticktide: {exc}", file=sys.stderr)
        sys.exit(2)
    except TickTideError as exc:
        print(f"ticktide: {exc}", file=sys.stderr)
        sys.exit(1)
