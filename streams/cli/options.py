"""Options every command shares, and settings built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from streams.settings import Settings, load_settings

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker", help="Kafka bootstrap HOST:PORT [env TICKTIDE_BROKER, default localhost:9092]", show_default=False
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file [env TICKTIDE_CONFIG]", show_default=False),
]


def settings_from(config: Path | None = None, **flags: Any) -> Settings:
    """Settings with the flags the user gave (None = not given) on top."""
    return load_settings(config, **flags)
