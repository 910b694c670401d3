"""`ticktide consume`: decoded events as JSON lines."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from streams.cli.options import AppOption, BrokerOption, ConfigOption, instance_topic, settings_from
from streams.cli.safe_text import counted
from streams.kafka.consumer import Consumed, read_topic
from streams.kafka.json_form import event_to_json


def consume(
    topic: Annotated[str, typer.Argument(help="Topic to read, e.g. market.trades (or bt1.market.candles)")],
    limit: Annotated[int | None, typer.Option(help="Stop after N events", show_default=False)] = None,
    timeout: Annotated[float, typer.Option(
        help="Stop after S seconds without a new event, once every partition is read to its end")] = 5.0,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning/--from-end", help="Start at the oldest record or at the end")
    ] = True,
    with_meta: Annotated[
        bool, typer.Option("--with-meta", help="Add topic, partition, offset and key to each line")
    ] = False,
    app: AppOption = None,
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Print decoded events as JSON lines (envelope and payload), one per line."""
    settings = settings_from(config, broker=broker, app=app)
    topic = instance_topic(topic, settings)
    bad = 0
    for record in read_topic(settings, topic, from_beginning=from_beginning, limit=limit, idle_timeout=timeout):
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if not isinstance(record, Consumed):
            bad += 1
            print(f"undecodable record {where}: {record.reason}", file=sys.stderr)
            continue
        line = event_to_json(record.event)
        if with_meta:
            key = record.key.decode("utf-8", "replace") if record.key is not None else None
            line = {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "key": key,
                "event": line,
            }
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    if bad:
        print(f"{counted(bad, 'undecodable record')} (see above)", file=sys.stderr)
