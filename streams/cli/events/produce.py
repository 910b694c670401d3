"""`ticktide produce`: trades from a file or the synthetic feed."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from streams.cli.events import produce_news
from streams.cli.options import BrokerOption, ConfigOption, settings_from
from streams.cli.safe_text import counted
from streams.errors import InvalidInput
from streams.ingest import TRADE_FORMATS
from streams.ingest.news import NEWS_FORMATS
from streams.kafka.admin import list_topics
from streams.kafka.catalog import topic as catalog_topic
from streams.kafka.producer import EventProducer
from streams.settings import Settings
from streams.tools import load
from streams.tools.lateness import LateCount, topic_watermarks

console = Console(stderr=True, soft_wrap=True)
SHOWN_REJECTS = 10


def _progress(total: int | None) -> Progress:
    return Progress(
        TextColumn("producing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def produce(
    topic: Annotated[str, typer.Argument(help="Target topic, e.g. market.trades")],
    file: Annotated[
        Path | None, typer.Option("--file", help="Input file (.gz read transparently)", show_default=False)
    ] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help=f"Trades: {', '.join(TRADE_FORMATS)}; news: {', '.join(NEWS_FORMATS)}")] = "jsonl",
    symbol: Annotated[str | None, typer.Option(help="Symbol of a Binance CSV file", show_default=False)] = None,
    venue: Annotated[str, typer.Option(help="Venue name written into each trade")] = "binance-usdm",
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Send the good rows, write rejects to a file")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Where --skip-invalid writes rejects [FILE.rejects.jsonl]", show_default=False)
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Generate a random-walk feed instead of reading a file")
    ] = False,
    symbols: Annotated[str, typer.Option(help="Synthetic feed symbols, comma-separated")] = "BTCUSDT,ETHUSDT",
    rate: Annotated[float, typer.Option(help="Synthetic trades (or headlines) per second")] = 1000.0,
    duration: Annotated[float, typer.Option(help="Synthetic feed seconds; 0 runs until Ctrl-C")] = 10.0,
    seed: Annotated[int | None, typer.Option(help="Synthetic feed random seed", show_default=False)] = None,
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Produce trades to a topic from a file (validated first) or a synthetic feed."""
    catalog_topic(topic)
    if topic not in ("market.trades", produce_news.TOPIC):
        raise InvalidInput(f"produce supports market.trades and market.news, not {topic}")
    if synthetic == (file is not None):
        raise InvalidInput("give exactly one of --file F or --synthetic")
    if rate <= 0:
        raise InvalidInput(f"--rate must be positive, got {rate}")
    settings = settings_from(config, broker=broker)
    if file is not None and topic == "market.trades":
        load.trade_rows(file, fmt, symbol, venue)  # a wrong file or format says so before the broker is asked
    if topic not in list_topics(settings):  # also: an unreachable broker fails here, in seconds
        raise InvalidInput(f"topic {topic} does not exist; run `ticktide topics create`")
    if topic == produce_news.TOPIC:
        _produce_news(settings, file, fmt, skip_invalid, rejects, symbols, rate, duration, seed)
        return
    with EventProducer(settings) as producer:
        if file is not None:
            lateness = LateCount(topic_watermarks(settings, topic), int(settings.grace_s * 1_000_000))
            report = _produce_file(producer, topic, file, fmt, symbol, venue, skip_invalid, rejects, lateness)
        else:
            names = [s.strip().upper() for s in symbols.split(",") if s.strip()]
            if not names:
                raise InvalidInput("--symbols needs at least one symbol")
            report = _produce_synthetic(producer, topic, names, rate, duration, seed)
    console.print(f"sent {counted(report.sent, 'row')}, rejected {len(report.rejected)}, {report.rate:,.0f} rows/s")
    if file is not None:
        for line in lateness.warning(topic, str(file), fmt):
            console.print(line, markup=False, highlight=False)


def _produce_file(
    producer: EventProducer,
    topic: str,
    file: Path,
    fmt: str,
    symbol: str | None,
    venue: str,
    skip_invalid: bool,
    rejects: Path | None,
    lateness: LateCount,
) -> load.LoadReport:
    good, rejected = load.scan(lateness.watch(load.trade_rows(file, fmt, symbol, venue)))
    if rejected:
        for row in rejected[:SHOWN_REJECTS]:
            console.print(f"{file}:{row.line}: {row.reason}", markup=False, highlight=False)
        if len(rejected) > SHOWN_REJECTS:
            console.print(f"... and {len(rejected) - SHOWN_REJECTS} more")
        if not skip_invalid:
            console.print(
                f"{len(rejected)} invalid rows in {file}: nothing sent. "
                "Fix them, or pass --skip-invalid to send the good rows."
            )
            raise typer.Exit(1)
        target = rejects or file.with_name(file.name + ".rejects.jsonl")
        load.write_rejects(rejected, target)
        console.print(f"{len(rejected)} rejected rows written to {target}")
    with _progress(good) as bar:
        task = bar.add_task("send", total=good)
        return load.send_rows(
            producer, topic, load.trade_rows(file, fmt, symbol, venue), lambda n: bar.advance(task, n)
        )


def _produce_synthetic(
    producer: EventProducer, topic: str, symbols: list[str], rate: float, duration: float, seed: int | None
) -> load.LoadReport:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    total = int(rate * duration) if duration else None
    with _progress(total) as bar:
        task = bar.add_task("send", total=total)
        report = load.run_synthetic(
            producer,
            topic,
            symbols,
            rate=rate,
            duration=duration,
            seed=seed,
            progress=lambda n: bar.advance(task, n),
            should_stop=lambda: stopping,
        )
    if stopping:
        print("stopped by signal", file=sys.stderr)
    return report


def _produce_news(settings: Settings, file: Path | None, fmt: str, skip_invalid: bool,
                  rejects: Path | None, symbols: str, rate: float, duration: float,
                  seed: int | None) -> None:
    stopping: list[bool] = []
    with EventProducer(settings) as producer:
        if file is not None:
            sent, rejected = produce_news.produce_news_file(producer, file, fmt, skip_invalid, rejects, console)
            console.print(f"sent {counted(sent, 'headline')}, rejected {rejected}")
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.append(True))
        names = [s.strip().upper() for s in symbols.split(",") if s.strip()]
        sent = produce_news.produce_news_synthetic(producer, names, rate, duration, seed, lambda: bool(stopping))
    console.print(f"sent {counted(sent, 'synthetic headline')}")
