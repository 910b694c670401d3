"""`ticktide dlq list|show|replay`: inspect dead letters, re-send chosen ones."""

from __future__ import annotations

import base64
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streams.cli.options import AppOption, BrokerOption, ConfigOption, settings_from
from streams.cli.safe_text import counted, printable
from streams.errors import DecodeError
from streams.kafka.codec import AvroCodec
from streams.kafka.json_form import event_to_json
from streams.kafka.registry import registry_for
from streams.resilience import dlq

app = typer.Typer(help="Inspect dead letters and re-send chosen ones to their source topic.",
                  no_args_is_help=True)
console = Console(soft_wrap=True)
AgentOption = Annotated[str | None, typer.Option(help="Only letters of this agent", show_default=False)]
ReasonOption = Annotated[str | None, typer.Option(help="Only this reason, e.g. undecodable", show_default=False)]
TopicOption = Annotated[str | None, typer.Option("--source-topic", help="Only letters from this topic",
                                                 show_default=False)]

ForceOption = Annotated[bool, typer.Option(
    "--force", help="Re-send letters already re-sent, or trades that may already be in the candles")]


@app.command("list")
def list_(agent: AgentOption = None, reason: ReasonOption = None, source_topic: TopicOption = None,
          as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
          app: AppOption = None, broker: BrokerOption = None, config: ConfigOption = None) -> None:
    """Every dead letter: id, time, source, agent, reason and error."""
    settings = settings_from(config, broker=broker, app=app)
    letters = dlq.select(dlq.read_letters(settings), agent=agent, reason=reason, source_topic=source_topic)
    if as_json:
        for letter in letters:
            print(json.dumps(letter.summary()))
        return
    table = Table(title=counted(len(letters), "dead letter"))
    for column in ("id", "time", "source", "agent", "reason", "attempt", "error"):
        table.add_column(column)
    for letter in letters:
        table.add_row(*(Text(printable(str(v))) for v in letter.summary().values()))  # no markup
    console.print(table)


@app.command("show")
def show(letter_id: Annotated[str, typer.Argument(metavar="ID", help="PARTITION:OFFSET from `dlq list`")],
         app: AppOption = None, broker: BrokerOption = None, config: ConfigOption = None) -> None:
    """One dead letter in full, with its original record decoded when possible."""
    settings = settings_from(config, broker=broker, app=app)
    [letter] = dlq.select(dlq.read_letters(settings), ids=[letter_id])
    shown = {"id": letter.id, **event_to_json(letter.letter)}
    value = letter.letter.original_value
    if value is not None:
        shown["original_value"] = base64.b64encode(value).decode()
        try:
            codec = AvroCodec(registry_for(settings), settings.max_record_bytes)
            shown["original_decoded"] = event_to_json(codec.decode(value))
        except DecodeError as error:
            shown["original_decoded"] = None
            shown["original_undecodable"] = f"{type(error).__name__}: {error}"
    print(json.dumps(shown, indent=2, ensure_ascii=False))


@app.command("replay")
def replay(letter_ids: Annotated[list[str] | None, typer.Argument(metavar="[ID]...",
                                                                  help="PARTITION:OFFSET ids")] = None,
           all_: Annotated[bool, typer.Option("--all", help="Every letter matching the filters")] = False,
           agent: AgentOption = None, reason: ReasonOption = None, source_topic: TopicOption = None,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent")] = False,
           force: ForceOption = False,
           app: AppOption = None, broker: BrokerOption = None, config: ConfigOption = None) -> None:
    """Re-send chosen dead letters' original bytes to their source topics (catalog topics
    only). Named letters are all sent or none; with --all, refused letters are skipped.
    Exit 1 if any letter was refused."""
    if not letter_ids and not all_:
        raise typer.BadParameter("name dead letters by ID, or pass --all (with filters)")
    settings = settings_from(config, broker=broker, app=app)
    letters = dlq.select(dlq.read_letters(settings), ids=letter_ids or (), agent=agent, reason=reason,
                         source_topic=source_topic)
    plan = dlq.plan_replay(settings, letters, force=force)
    for letter, verdict in plan.refused:
        print(f"refused {letter.id}: {printable(verdict.why)}", file=sys.stderr)
    sendable = plan.sendable if all_ or not plan.refused else []
    for letter in sendable:
        print(f"{'would re-send' if dry_run else 're-sending'} {letter.id} -> {letter.letter.source_topic}")
    sent = 0 if dry_run else dlq.replay(settings, sendable)
    print(f"{counted(sent, 'dead letter')} re-sent" if not dry_run
          else f"{counted(len(sendable), 'dead letter')} selected")
    if plan.refused:
        if not all_:
            print("nothing re-sent: a named letter was refused", file=sys.stderr)
        raise typer.Exit(1)
