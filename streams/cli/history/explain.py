"""`ticktide explain ORDER_ID`: why did we trade?"""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.options import AppOption, BrokerOption, ConfigOption, settings_from
from streams.cli.safe_text import printable
from streams.tools.lineage import explain


def explain_command(
    order_id: Annotated[str, typer.Argument(help="The order id, e.g. from /portfolio or trading.events")],
    app: AppOption = None,
    broker: BrokerOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the causal chain of an order: order <- signal <- indicators/anomalies/enrichment
    <- candle <- the trades' offsets."""
    for line in explain(settings_from(config, broker=broker, app=app), order_id):
        print(printable(line))  # event fields are untrusted text
