"""`ticktide replay`: copy a range of topics into a topic or a fresh isolated app."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from streams.cli.options import BrokerOption, ConfigOption, settings_from
from streams.cli.safe_text import counted
from streams.devstack.broker import port_is_free
from streams.errors import InvalidInput
from streams.settings import Settings
from streams.tools.replay import TOPIC_SETS, Bound, Plan, copy_response_log, plan, replay, topics_of

_SETS = "; ".join(f"{name} = {' '.join(topics)}" for name, topics in TOPIC_SETS.items())


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise InvalidInput(f"--speed must be a positive number or max, got {text!r}")
    return value


def replay_command(
    into: Annotated[str, typer.Option("--into", help="Target topic, or a new app id (isolated instance)")],
    topic: Annotated[list[str] | None, typer.Option(
        "--topic", help="Topic to replay, e.g. market.trades (repeat, or commas, for several)")] = None,
    named: Annotated[str | None, typer.Option(
        "--set", help=f"A named set of topics: {_SETS}", show_default=False)] = None,
    start: Annotated[str, typer.Option("--from", help="OFFSET or TIME (ISO 8601): first record")] = "0",
    stop: Annotated[str | None, typer.Option("--to", help="OFFSET or TIME: end, exclusive [default: now]",
                                             show_default=False)] = None,
    speed: Annotated[str, typer.Option("--speed", help="N x the pace of --by's clock (the market's), or max")]
    = "max",
    by: Annotated[Literal["event-time", "record-time"], typer.Option(
        "--by", help="What TIME and --speed mean: event-time = the events' own time (the market's, whenever "
                     "they were produced); record-time = when they were produced (Kafka timestamps)")]
    = "event-time",
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Replay [--from, --to) of topics, merged by event time, at --speed into a topic or a new app."""
    settings = settings_from(config, broker=broker)
    pace = _speed(speed)
    topics = topics_of(topic or [], named)
    the_plan = plan(settings, topics, Bound.parse(start, "from"),
                    None if stop is None else Bound.parse(stop, "to"), into,
                    "event" if by == "event-time" else "record")
    console = Console(stderr=True, highlight=False)
    if the_plan.new_app:
        logged = copy_response_log(settings, the_plan.new_app)
        console.print(f"copied {counted(logged, 'response log record')} into {the_plan.new_app}")
    for source in the_plan.sources:
        kept = " (event time in [--from, --to) kept)" if source.window.bounded else ""
        console.print(f"replaying {counted(source.total, 'record')} of {source.topic}{kept} "
                      f"(partitions {dict(enumerate(zip(source.starts, source.ends, strict=True)))}) "
                      f"into {source.target}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task("replay", total=the_plan.total)
        interrupted = threading.Event()  # Ctrl-C sets it: the replay stops between records, never inside a call
        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
        try:
            done = replay(settings, the_plan, pace,
                          lambda p: bar.update(task, completed=p.copied + p.skipped)
                          if p.copied % 500 == 0 else None,
                          interrupted)
        finally:
            signal.signal(signal.SIGINT, previous)
        bar.update(task, completed=done.copied + done.skipped)
    where = ", ".join(f"{p}@{o}" if len(the_plan.sources) == 1 else f"{t}:{p}@{o}"
                      for (t, p), o in sorted(done.next_offsets.items()))
    outside = f" ({counted(done.skipped, 'record')} read outside [--from, --to) left out)" if done.skipped else ""
    print(f"replayed {done.copied} of {the_plan.total - done.skipped} records into {the_plan.target} in "
          f"{done.seconds:.2f} s ({done.rate:,.0f} events/s){outside}")
    if the_plan.new_app:
        for line in instance_commands(settings, the_plan, broker):
            print(line)
    if done.copied + done.skipped < the_plan.total:
        print(f"stopped (interrupted) at partition@next-offset {where}; "
              f"resume with --from those offsets", flush=True)
        raise typer.Exit(130)


def instance_commands(settings: Settings, the_plan: Plan, broker: str | None) -> list[str]:
    """The exact commands that start the new app's worker and read what it makes."""
    app = the_plan.new_app
    port = next(p for p in range(settings.web_port + 1, settings.web_port + 100) if port_is_free(p))
    given = f" --broker {broker}" if broker else ""
    trades = settings.topic_prefix + "market.trades"
    # the copied trades end: their last windows close once quiet, not as wall time passes their ends
    close_all = "TICKTIDE_IDLE_CLOSE_ALL=true " if any(s.topic == trades for s in the_plan.sources) else ""
    return [
        f"start its worker:  {close_all}ticktide worker --app {app} --web-port {port} --data-dir .ticktide-{app}"
        f"{given}  (--refresh-fallbacks asks Claude again for live's fallbacks)",
        f"read its outputs:  ticktide consume market.candles --app {app}{given}   (or {app}.market.candles)",
        f"                   curl 'localhost:{port}/candles/BTCUSDT?interval=1m'   (and the dashboard at"
        f" http://localhost:{port}/)",
        f"compare with live: ticktide parity --app {app}{given}",
    ]
