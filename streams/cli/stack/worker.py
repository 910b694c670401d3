"""`ticktide worker`: one Faust worker with every agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli.options import AppOption, BrokerOption, ConfigOption, settings_from


def worker(
    broker: BrokerOption = None,
    config: ConfigOption = None,
    web_port: Annotated[
        int | None, typer.Option(help="Web views port [env TICKTIDE_WEB_PORT, default 6066]", show_default=False)
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Table state directory [env TICKTIDE_DATA_DIR]", show_default=False)
    ] = None,
    app_id: Annotated[
        str | None, typer.Option(help="App id = consumer group [env TICKTIDE_APP_ID]", show_default=False)
    ] = None,
    app: AppOption = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error", show_default=False)] = None,
    refresh_fallbacks: Annotated[bool | None, typer.Option(
        "--refresh-fallbacks", help="Ask Claude again (within the budget) for events whose logged outcome was a "
        "fallback, e.g. in a replayed instance [env TICKTIDE_ENRICH_REFRESH_FALLBACKS]", show_default=False)] = None,
) -> None:
    """Run one Faust worker with all agents; several form one consumer group."""
    # Imported here for start-up speed, not to dodge a cycle: the worker brings Faust and
    # every agent, which the other commands do not need.
    from streams.worker import run_worker

    run_worker(settings_from(
        config, broker=broker, web_port=web_port, data_dir=data_dir, app_id=app_id, log_level=log_level, app=app,
        enrich_refresh_fallbacks=refresh_fallbacks))
