"""`ticktide rebuild portfolio|candles`: rebuild state from its topic and compare it with
the live state; exit 1 on any difference."""

from __future__ import annotations

import typer
from rich.console import Console

from streams.cli.options import AppOption, BrokerOption, ConfigOption, settings_from
from streams.cli.safe_text import plain
from streams.tools.rebuild import Comparison, rebuild_candles, rebuild_portfolio

app = typer.Typer(help="Rebuild state from its source topic and compare it with the live state.",
                  no_args_is_help=True)


def _report(result: Comparison) -> None:
    console = Console(highlight=False, soft_wrap=True)
    for key, outcome in result.keys.items():
        style = "green" if outcome == "equal" else "red"
        # keys and values come from topics anyone may write to: never read as markup
        console.print(f"{result.what} {plain(key)}: [{style}]{plain(outcome)}[/{style}]")
    if not result.keys:
        console.print(f"{result.what}: nothing to compare (no source events and no live state)")
    console.print(f"checksum {result.checksum}  events {result.events}  "
                  f"{result.rate:,.0f} events/s  ({result.seconds:.2f} s)"
                  + (f"  not folded (undecodable or invalid) {result.undecodable}" if result.undecodable else ""))
    if not result.equal:
        console.print(f"[red]{result.what}: rebuild differs from the live state[/red]")
        raise typer.Exit(1)
    console.print(f"{result.what}: rebuild equals the live state")


@app.command("portfolio")
def portfolio(
    app_id: str | None = typer.Option(
        None, help="App id whose live table to compare, topics unprefixed [env TICKTIDE_APP_ID]"),
    app: AppOption = None, broker: BrokerOption = None, config: ConfigOption = None,
) -> None:
    """Fold trading.events from the beginning into fresh portfolios; compare per account."""
    _report(rebuild_portfolio(settings_from(config, broker=broker, app_id=app_id, app=app)))


@app.command("candles")
def candles(
    app_id: str | None = typer.Option(
        None, help="App id whose output to compare, topics unprefixed [env TICKTIDE_APP_ID]"),
    app: AppOption = None, broker: BrokerOption = None, config: ConfigOption = None,
) -> None:
    """Fold market.trades from the beginning into fresh candles; compare with market.candles."""
    _report(rebuild_candles(settings_from(config, broker=broker, app_id=app_id, app=app)))
