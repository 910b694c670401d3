"""`ticktide enrich`: Claude enrichment over history (backfill through the Message Batches API)."""

import typer

from streams.cli.enrich import backfill

app = typer.Typer(help="Enrich history: answers for past events at the batch price.", no_args_is_help=True)
app.command("backfill")(backfill.backfill_command)

__all__ = ["app"]
