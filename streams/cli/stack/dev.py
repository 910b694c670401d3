"""`ticktide dev` (what `make run` calls): the whole embedded stack."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.options import ConfigOption, settings_from
from streams.devstack.stack import DEFAULT_PORT, DevStack


def dev(
    broker_port: Annotated[int, typer.Option(help="Embedded broker port (a free one if taken)")] = DEFAULT_PORT,
    web_port: Annotated[int | None, typer.Option(help="Web views port [default 6066]", show_default=False)] = None,
    symbols: Annotated[str, typer.Option(help="Synthetic feed symbols")] = "BTCUSDT,ETHUSDT",
    rate: Annotated[float, typer.Option(help="Synthetic trades per second")] = 200.0,
    config: ConfigOption = None,
) -> None:
    """Start broker, topics, one worker and the synthetic feed; Ctrl-C stops them all."""
    settings = settings_from(config, web_port=web_port)
    stack = DevStack(settings, broker_port=broker_port, symbols=symbols, rate=rate)
    try:
        bootstrap = stack.start()
        typer.echo(
            f"ticktide dev is up:\n"
            f"  broker    {bootstrap}   (export TICKTIDE_BROKER={bootstrap})\n"
            f"  web       http://localhost:{settings.web_port}/health\n"
            f"            http://localhost:{settings.web_port}/candles/BTCUSDT?interval=1m\n"
            f"  feed      synthetic {symbols} at {rate:g} trades/s -> market.trades\n"
            f"  news      a synthetic headline every {1 / stack.news_rate:g} s -> market.news\n"
            f"  enrich    analysis.enrichments (Claude if ANTHROPIC_API_KEY is set, else fallback);"
            f" http://localhost:{settings.web_port}/assess/BTCUSDT\n"
            f"  logs      {settings.data_dir}/\n"
            f"try: ticktide consume market.trades --limit 5 --broker {bootstrap}\n"
            f"Ctrl-C stops everything."
        )
        reason = stack.wait()
        typer.echo(f"stopping ({reason}) ...")
    finally:
        stack.stop()
    typer.echo("stopped: feed, worker, broker")
