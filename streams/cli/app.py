"""The root `ticktide` app: every command registered, and the entry point."""

from __future__ import annotations

import sys

import typer

from streams.cli import schemas
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
