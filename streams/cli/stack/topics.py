"""`ticktide topics create|list|describe`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.options import BrokerOption, ConfigOption, settings_from
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
) -> None:
    """Create every topic of the catalog that does not exist yet (idempotent)."""
    settings = settings_from(config, broker=broker, partitions=partitions)
    outcome = admin.create_topics(settings)
    for name in (spec.name for spec in CATALOG):
        console.print(f"{outcome[name]:>8}  {name}")


@app.command("list")
def list_(broker: BrokerOption = None, config: ConfigOption = None) -> None:
    """Every topic on the broker with its partition count (catalog topics marked)."""
    settings = settings_from(config, broker=broker)
    catalog = {spec.name for spec in CATALOG}
    for name, partitions in admin.list_topics(settings).items():
        marker = "*" if name in catalog else " "
        console.print(f"{marker} {name}  ({partitions} partitions)")


@app.command("describe")
def describe(
    topic: Annotated[str, typer.Argument(help="Topic name")], broker: BrokerOption = None, config: ConfigOption = None
) -> None:
    """Partitions, end offsets and the catalog entry of a topic."""
    settings = settings_from(config, broker=broker)
    info = admin.describe(settings, topic)
    table = Table(title=f"{topic}: {info.partitions} partitions, {info.records} records")
    table.add_column("partition", justify="right")
    table.add_column("end offset", justify="right")
    for partition, end in enumerate(info.end_offsets):
        table.add_row(str(partition), str(end))
    console.print(table)
    if topic in {spec.name for spec in CATALOG}:
        spec = catalog_topic(topic)
        types = ", ".join(t.__name__ for t in spec.value_types)
        retention = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms / 3_600_000:g} h"
        console.print(
            f"carries {types}; key = {spec.key_field}; retention {retention}; cleanup {spec.cleanup_policy}. {spec.doc}"
        )
