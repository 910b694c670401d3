"""`ticktide replay`: copy a range of topics into a topic or a fresh isolated app."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from streams.cli.options import BrokerOption, ConfigOption, settings_from
from streams.errors import InvalidInput
from streams.tools.replay import TOPIC_SETS, Bound, copy_response_log, plan, replay, topics_of

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
    speed: Annotated[str, typer.Option("--speed", help="N x the market's pace (event time), or max")] = "max",
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Replay [--from, --to) of topics, merged by event time, at --speed into a topic or a new app."""
    settings = settings_from(config, broker=broker)
    pace = _speed(speed)
    topics = topics_of(topic or [], named)
    the_plan = plan(settings, topics, Bound.parse(start, "from"),
                    None if stop is None else Bound.parse(stop, "to"), into)
    console = Console(stderr=True, highlight=False)
    if the_plan.new_app:
        logged = copy_response_log(settings, the_plan.new_app)
        console.print(f"copied {logged} response log records into {the_plan.new_app}")
    for source in the_plan.sources:
        console.print(f"replaying {source.total} records of {source.topic} "
                      f"(partitions {dict(enumerate(zip(source.starts, source.ends, strict=True)))}) "
                      f"into {source.target}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task("replay", total=the_plan.total)
        interrupted = threading.Event()  # Ctrl-C sets it: the replay stops between records, never inside a call
        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
        try:
            done = replay(settings, the_plan, pace,
                          lambda p: bar.update(task, completed=p.copied) if p.copied % 500 == 0 else None,
                          interrupted)
        finally:
            signal.signal(signal.SIGINT, previous)
        bar.update(task, completed=done.copied)
    where = ", ".join(f"{p}@{o}" if len(the_plan.sources) == 1 else f"{t}:{p}@{o}"
                      for (t, p), o in sorted(done.next_offsets.items()))
    print(f"replayed {done.copied} of {the_plan.total} records into {the_plan.target} in "
          f"{done.seconds:.2f} s ({done.rate:,.0f} events/s)")
    if the_plan.new_app:
        print(f"start its worker: TICKTIDE_APP_ID={the_plan.new_app} "
              f"TICKTIDE_TOPIC_PREFIX={the_plan.new_app}. ticktide worker --data-dir .ticktide-{the_plan.new_app}"
              f" (--refresh-fallbacks asks Claude again for live's fallbacks)")
    if done.copied < the_plan.total:
        print(f"stopped (interrupted) at partition@next-offset {where}; "
              f"resume with --from those offsets", flush=True)
        raise typer.Exit(130)
