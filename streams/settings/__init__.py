"""One frozen Settings object: CLI flags > TICKTIDE_* env > config file > defaults.

Read once at start (``load_settings``) and passed in. A wrong value raises ConfigError
with one line naming the setting and its environment variable; the CLI exits with 2.

The settings are flat (``TICKTIDE_<NAME>``), grouped by what they configure, one module
each: broker.py (reaching the broker), worker.py (one worker process), market.py (the
candle pipeline), enrichment.py (Claude), trading.py (paper trading). ``Settings`` joins
them and checks what spans groups.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self, get_args

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from domain.market.windows import chosen_intervals
from streams.errors import ConfigError, MissingSetting, explain_settings_error
from streams.settings.broker import BrokerSettings
from streams.settings.enrichment import EnrichmentSettings
from streams.settings.market import MarketSettings
from streams.settings.trading import TradingSettings
from streams.settings.worker import WorkerSettings

ENV_PREFIX = "TICKTIDE_"
CONFIG_ENV = "TICKTIDE_CONFIG"


class Settings(BaseSettings, BrokerSettings, WorkerSettings, MarketSettings, EnrichmentSettings, TradingSettings):
    """Everything ticktide can be configured with. Immutable once loaded."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True
    )

    @property
    def analysed_intervals(self) -> frozenset[str]:
        """The candle intervals the analysis folds (``domain.market.windows.chosen_intervals``):
        those chosen, with the strategy's and the enrichment's."""
        return chosen_intervals(self.analysis_intervals, self.window_specs,
                                (self.trading_interval, self.enrich_snapshot_interval))

    @model_validator(mode="after")
    def _check_analysed_intervals(self) -> Self:
        try:
            self.analysed_intervals  # noqa: B018 - raises for a name no window has, or one left out
        except ValueError as error:
            raise MissingSetting("analysis_intervals", str(error)) from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def secret_fields() -> frozenset[str]:
    """Names of the settings that hold secrets (SecretStr)."""
    return frozenset(name for name, info in Settings.model_fields.items()
                     if info.annotation is SecretStr or SecretStr in get_args(info.annotation))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from CLI overrides (None means not given), env, config file, defaults."""
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist ({CONFIG_ENV} or --config)")
    given = {key: value for key, value in overrides.items() if value is not None}
    cls: type[Settings] = Settings
    if path is not None:
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})
        cls = type("Settings", (Settings,), {"model_config": config})
    try:
        return cls(**given)
    except ValidationError as exc:
        raise ConfigError(explain_settings_error(exc, ENV_PREFIX, secret_fields())) from None
    except ValueError as exc:  # e.g. a malformed TOML file
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
