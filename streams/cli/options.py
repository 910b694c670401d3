"""Options every command shares, settings built from them, and the topic a command names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.errors import InvalidInput, UnknownTopic
from streams.kafka.catalog import CATALOG
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
AppOption = Annotated[
    str | None,
    typer.Option("--app", help="An isolated instance, e.g. what `replay --into APP` made: its app id and its "
                               "topics (APP.market.candles, ...) [default: the live app]", show_default=False),
]
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CATALOG_NAMES = tuple(spec.name for spec in CATALOG)


def settings_from(config: Path | None = None, *, app: str | None = None, **flags: Any) -> Settings:
    """Settings with the flags the user gave (None = not given) on top; ``app`` makes them
    the isolated instance's (app id APP, topic prefix ``APP.``)."""
    if app is not None:
        if not _APP_NAME.match(app):
            raise InvalidInput(f"--app {app!r} is not an app id (letters, digits, ., - and _)")
        flags.update(app_id=app, topic_prefix=f"{app}.")
    return load_settings(config, **flags)


def instance_topic(name: str, settings: Settings) -> str:
    """The topic a command works on: a catalog name (``market.candles``) with the settings'
    prefix (``--app bt1``: ``bt1.market.candles``), or an isolated instance's topic named in
    full (``bt1.market.candles``). UnknownTopic for anything else."""
    if name in _CATALOG_NAMES:
        return settings.topic_prefix + name
    prefix = next((name.removesuffix(c) for c in _CATALOG_NAMES if name.endswith("." + c)), None)
    if prefix is not None and _APP_NAME.match(prefix.removesuffix(".")):
        if settings.topic_prefix and prefix != settings.topic_prefix:
            raise InvalidInput(f"{name} is not a topic of --app {settings.topic_prefix.removesuffix('.')}")
        return name
    raise UnknownTopic(f"unknown topic {name!r}; the catalog has: {', '.join(_CATALOG_NAMES)} "
                       "(an isolated instance's: APP.<topic>, or --app APP)")


def catalog_name(topic: str) -> str | None:
    """The catalog name of a (possibly prefixed) topic: ``bt1.market.candles`` -> ``market.candles``."""
    return next((c for c in _CATALOG_NAMES if topic == c or topic.endswith("." + c)), None)
