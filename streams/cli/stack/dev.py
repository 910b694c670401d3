"""`ticktide dev` (what `make run` calls): the whole embedded stack, with the synthetic
feed, a file of recorded trades, or no feed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli.options import ConfigOption, settings_from
from streams.devstack.stack import DEFAULT_PORT, NO_FEED, SYNTHETIC, DevStack
from streams.errors import InvalidInput
from streams.ingest import TRADE_FORMATS, guess_file_format, read_trades


def _file_feed(feed: str, fmt: str | None, symbol: str | None) -> tuple[str, tuple[str, ...]]:
    """The file's path and the ``produce`` options that read it, checked before anything starts."""
    path = Path(feed).expanduser().resolve()
    if not path.is_file():
        raise InvalidInput(f"--feed {feed!r}: no such file (or pass synthetic or none)")
    fmt = fmt or guess_file_format(path) or "jsonl"
    read_trades(path, fmt, symbol=symbol)  # a wrong format or a missing --symbol says so now
    return str(path), ("--format", fmt, *(("--symbol", symbol) if symbol else ()))


def dev(
    broker_port: Annotated[int, typer.Option(help="Embedded broker port (a free one if taken)")] = DEFAULT_PORT,
    web_port: Annotated[int | None, typer.Option(help="Web views port [default 6066]", show_default=False)] = None,
    feed: Annotated[str, typer.Option(
        help="synthetic (trades and headlines at now), none (you produce), or a FILE of recorded trades, "
             "sent once and alone so that its own candles show")] = SYNTHETIC,
    fmt: Annotated[str | None, typer.Option(
        "--format", help=f"Format of a FILE feed: {', '.join(TRADE_FORMATS)} [default: guessed from the file]",
        show_default=False)] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol of a Binance CSV FILE feed", show_default=False)] = None,
    symbols: Annotated[str, typer.Option(help="Synthetic feed symbols")] = "BTCUSDT,ETHUSDT",
    rate: Annotated[float, typer.Option(help="Synthetic trades per second")] = 200.0,
    config: ConfigOption = None,
) -> None:
    """Start broker, topics, one worker and a feed; Ctrl-C stops them all."""
    settings = settings_from(config, web_port=web_port)
    path, feed_args = (feed, ()) if feed in (SYNTHETIC, NO_FEED) else _file_feed(feed, fmt, symbol)
    stack = DevStack(settings, broker_port=broker_port, symbols=symbols, rate=rate, feed=path, feed_args=feed_args,
                     on_feed_sent=lambda: typer.echo(f"feed: {_last_line(stack.feed_log)}"))
    web = f"http://localhost:{settings.web_port}"
    example = symbol or (symbols.split(",")[0] if feed == SYNTHETIC else "BTCUSDT")
    try:
        bootstrap = stack.start()
        typer.echo(
            f"ticktide dev is up:\n"
            f"  broker     {bootstrap}   (export TICKTIDE_BROKER={bootstrap})\n"
            f"  dashboard  {web}/   (health, candles, signals, enrichments, dead letters)\n"
            f"  web        {web}/health\n"
            f"             {web}/candles/{example}?interval=1m\n"
            + _feed_lines(stack, feed, feed_args, symbols, rate, web)
            + f"  logs       {settings.data_dir}/\n"
            f"try: ticktide consume market.trades --limit 5 --broker {bootstrap}\n"
            f"Ctrl-C stops everything."
        )
        reason = stack.wait()
        typer.echo(f"stopping ({reason}) ...")
    finally:
        stack.stop()
    typer.echo("stopped: feed, worker, broker")


def _feed_lines(stack: DevStack, feed: str, feed_args: tuple[str, ...], symbols: str, rate: float,
                web: str) -> str:
    if feed == SYNTHETIC:
        return (f"  feed       synthetic {symbols} at {rate:g} trades/s -> market.trades\n"
                f"  news       a synthetic headline every {1 / stack.news_rate:g} s -> market.news\n"
                f"  enrich     analysis.enrichments (Claude if ANTHROPIC_API_KEY is set, else fallback);"
                f" {web}/assess/BTCUSDT\n")
    if feed == NO_FEED:
        return "  feed       none: produce your own, e.g. ticktide produce market.trades --file F --format FMT\n"
    return (f"  feed       {stack.feed} ({' '.join(feed_args)}) -> market.trades, once, no synthetic feed:\n"
            f"             its windows close as its own time passes them, the last ones after "
            f"{stack.settings.idle_close_s:g} s of quiet\n")


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return lines[-1] if lines else "done"
