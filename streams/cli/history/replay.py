"""`ticktide replay`: copy a range of a topic into a topic or a fresh isolated app."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from streams.cli.options import BrokerOption, ConfigOption, settings_from
from streams.errors import InvalidInput
from streams.tools.replay import Bound, plan, replay


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
    topic: Annotated[str, typer.Option("--topic", help="Topic to replay, e.g. market.trades")],
    into: Annotated[str, typer.Option("--into", help="Target topic, or a new app id (isolated instance)")],
    start: Annotated[str, typer.Option("--from", help="OFFSET or TIME (ISO 8601): first record")] = "0",
    stop: Annotated[str | None, typer.Option("--to", help="OFFSET or TIME: end, exclusive [default: now]",
                                             show_default=False)] = None,
    speed: Annotated[str, typer.Option("--speed", help="N x the original pace, or max")] = "max",
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Replay [--from, --to) of a topic at --speed into a topic or a new app instance."""
    settings = settings_from(config, broker=broker)
    pace = _speed(speed)
    the_plan = plan(settings, topic, Bound.parse(start, "from"),
                    None if stop is None else Bound.parse(stop, "to"), into)
    console = Console(stderr=True, highlight=False)
    console.print(f"replaying {the_plan.total} records of {topic} "
                  f"(partitions {dict(enumerate(zip(the_plan.starts, the_plan.ends, strict=True)))}) "
                  f"into {the_plan.target}")
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
    where = ", ".join(f"{p}@{o}" for p, o in sorted(done.next_offsets.items()))
    print(f"replayed {done.copied} of {the_plan.total} records into {the_plan.target} in "
          f"{done.seconds:.2f} s ({done.rate:,.0f} events/s)")
    if the_plan.new_app:
        print(f"start its worker: TICKTIDE_APP_ID={the_plan.new_app} "
              f"TICKTIDE_TOPIC_PREFIX={the_plan.new_app}. ticktide worker --data-dir .ticktide-{the_plan.new_app}")
    if done.copied < the_plan.total:
        print(f"stopped (interrupted) at partition@next-offset {where}; "
              f"resume with --from those offsets", flush=True)
        raise typer.Exit(130)
