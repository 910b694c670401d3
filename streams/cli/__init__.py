"""The `ticktide` command line."""

from __future__ import annotations

import sys

import typer

from streams.cli import (
    broker_cmd,
    command_cmd,
    consume_cmd,
    dev_cmd,
    dlq_cmd,
    explain_cmd,
    produce_cmd,
    rebuild_cmd,
    replay_cmd,
    topics_cmd,
    worker_cmd,
)
from streams.errors import ConfigError, TickTideError

app = typer.Typer(
    name="ticktide",
    help="Kafka stream processing for market data: typed Avro topics, Faust agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("broker")(broker_cmd.broker)
app.command("worker")(worker_cmd.worker)
app.command("produce")(produce_cmd.produce)
app.command("consume")(consume_cmd.consume)
app.command("dev")(dev_cmd.dev)
app.add_typer(topics_cmd.app, name="topics")
app.add_typer(rebuild_cmd.app, name="rebuild")
app.command("replay")(replay_cmd.replay_command)
app.command("explain")(explain_cmd.explain_command)
app.command("command")(command_cmd.command_command)
app.add_typer(dlq_cmd.app, name="dlq")


def main() -> None:
    """Entry point: run a command; a ticktide error becomes one line and an exit code."""
    try:
        app()
    except ConfigError as exc:
        print(f"ticktide: {exc}", file=sys.stderr)
        sys.exit(2)
    except TickTideError as exc:
        print(f"ticktide: {exc}", file=sys.stderr)
        sys.exit(1)
