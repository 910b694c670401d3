"""`ticktide enrich backfill`: answers for a range of past events through the Message
Batches API (half the live price), logged so that a replay or a new worker asks nothing.
This module is the command's signature (cheap to import); ``run`` does it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from domain.clock import to_micros
from domain.enrich.context import INPUTS
from streams.cli.options import BrokerOption, ConfigOption, settings_from
from streams.cli.safe_text import printable
from streams.errors import InvalidInput
from streams.kafka.json_form import parse_time
from streams.settings import Settings

TOPICS = tuple(topic for topic, _ in INPUTS.values())


def _topics(given: list[str], settings: Settings) -> list[str]:
    names = [t.strip() for text in given for t in text.split(",") if t.strip()]
    enabled = set(settings.enrich_inputs.split(","))
    for name in names:
        if name not in TOPICS:
            raise InvalidInput(f"--topic {printable(name)!r} is not enriched: use {', '.join(TOPICS)}")
        kind = next(k for k, (t, _) in INPUTS.items() if t == name)
        if kind not in enabled:
            raise InvalidInput(f"{name} is not enriched here (TICKTIDE_ENRICH_INPUTS={settings.enrich_inputs})")
    if not names:
        raise InvalidInput(f"name at least one --topic: {', '.join(TOPICS)}")
    return sorted(set(names))


def _time_us(text: str, name: str) -> int:
    try:
        return to_micros(parse_time(text))
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(f"--{name} {printable(text)!r} is not a time (ISO 8601 or epoch seconds)") from None


def backfill_command(
    topic: Annotated[list[str], typer.Option(
        "--topic", help=f"Input topic to backfill: {', '.join(TOPICS)} (repeat, or commas, for several)")],
    start: Annotated[str, typer.Option("--from", help="TIME (ISO 8601 or epoch): first event time")],
    stop: Annotated[str, typer.Option("--to", help="TIME: end of the range, exclusive")],
    poll_s: Annotated[float, typer.Option("--poll", min=0.01, help="Seconds between looks at a batch")] = 15.0,
    state: Annotated[Path | None, typer.Option(
        "--state", help="Where created batches are remembered [default: DATA_DIR/enrich-backfill.APP_ID.json]",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be asked; send nothing")] = False,
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Answer the events of [--from, --to) that the response log lacks, through the Message
    Batches API (half price); Ctrl-C stops, the same command resumes."""
    settings = settings_from(config, broker=broker)
    topics = _topics(topic, settings)
    start_us, end_us = _time_us(start, "from"), _time_us(stop, "to")
    if end_us <= start_us:
        raise InvalidInput("--to must be after --from")
    from streams.cli.enrich.run import backfill  # the SDK and Faust load only for this command

    backfill(settings, topics, start_us, end_us, poll_s, state, dry_run)
