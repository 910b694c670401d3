"""`ticktide topics create|list|describe`."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.options import AppOption, BrokerOption, ConfigOption, catalog_name, instance_topic, settings_from
from streams.cli.safe_text import counted
from streams.errors import UnknownTopic
from streams.kafka import admin
from streams.kafka.catalog import CATALOG
from streams.kafka.catalog import topic as catalog_topic

app = typer.Typer(help="Create, list and describe the catalog's topics.", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command("create")
def create(
    broker: BrokerOption = None,
    config: ConfigOption = None,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions per topic [env TICKTIDE_PARTITIONS, default 4]", show_default=False)
    ] = None,
    app: AppOption = None,
) -> None:
    """Create every topic of the catalog that does not exist yet (idempotent)."""
    settings = settings_from(config, broker=broker, partitions=partitions, app=app)
    outcome = admin.create_topics(settings)
    for name in (settings.topic_prefix + spec.name for spec in CATALOG):
        console.print(f"{outcome[name]:>8}  {name}")


@app.command("list")
def list_(app: AppOption = None, broker: BrokerOption = None, config: ConfigOption = None) -> None:
    """Every topic on the broker with its partition count (the app's catalog topics marked *)."""
    settings = settings_from(config, broker=broker, app=app)
    catalog = {settings.topic_prefix + spec.name for spec in CATALOG}
    for name, partitions in admin.list_topics(settings).items():
        marker = "*" if name in catalog else " "
        console.print(f"{marker} {name}  ({counted(partitions, 'partition')})")


@app.command("describe")
def describe(
    topic: Annotated[str, typer.Argument(help="Topic name, e.g. market.trades or bt1.market.candles")],
    app: AppOption = None, broker: BrokerOption = None, config: ConfigOption = None
) -> None:
    """Partitions, end offsets and the catalog entry of a topic."""
    settings = settings_from(config, broker=broker, app=app)
    with contextlib.suppress(UnknownTopic):  # any topic on the broker can be described (changelogs, ...)
        topic = instance_topic(topic, settings)
    info = admin.describe(settings, topic)
    table = Table(title=f"{topic}: {counted(info.partitions, 'partition')}, {counted(info.records, 'record')}")
    table.add_column("partition", justify="right")
    table.add_column("end offset", justify="right")
    for partition, end in enumerate(info.end_offsets):
        table.add_row(str(partition), str(end))
    console.print(table)
    known = catalog_name(topic)
    if known is not None:
        spec = catalog_topic(known)
        types = ", ".join(t.__name__ for t in spec.value_types)
        retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms / 3_600_000:g} h"
        console.print(
            f"carries {types}; key = {spec.key_field}; retention {retention}; cleanup {spec.cleanup_policy}. {spec.doc}"
        )
