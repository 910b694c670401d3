"""One frozen Settings object: CLI flags > TICKTIDE_* env > config file > defaults.

Read once at start (``load_settings``) and passed in. A wrong value raises ConfigError
with one line naming the setting and its environment variable; the CLI exits with 2.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from domain.market.windows import DEFAULT_WINDOWS, WindowSpec, chosen_intervals, parse_windows
from domain.rules.commands import is_account
from domain.rules.fields import DEFAULT_MAX_FUTURE_SKEW_S
from domain.strategy.strategies import strategy_named
from streams.engine import EngineTraits, engine_traits
from streams.errors import ConfigError, MissingSetting, explain_settings_error

ENV_PREFIX = "TICKTIDE_"
CONFIG_ENV = "TICKTIDE_CONFIG"
# librdkafka's own log lines (connection refused, retries) go here, not to stderr: the
# commands turn failures into one clear error; run with log_level=debug to see them.
RDKAFKA_LOG = logging.getLogger("ticktide.rdkafka")
RDKAFKA_LOG.propagate = False
RDKAFKA_LOG.addHandler(logging.NullHandler())
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}$")
_TOKEN = re.compile(r"[\x21-\x7e]+")
MIN_API_TOKEN = 16
MAX_API_TOKEN = 256


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Everything ticktide can be configured with. Immutable once loaded."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True
    )

    broker: str = Field("localhost:9092", description="Kafka bootstrap servers, HOST:PORT[,...]")
    broker_flavor: Literal["auto", "kafka", "tansu"] = Field(
        "auto", description="tansu turns off checks the embedded broker cannot pass"
    )
    schema_registry_url: str | None = Field(None, description="Confluent Schema Registry URL")
    schema_registry_auto_register: bool = Field(
        True, description="Writers register their schemas; false: only look them up (`ticktide schemas register`)")
    app_id: str = Field("ticktide", description="Faust app id = consumer group id")
    data_dir: Path = Field(Path(".ticktide"), description="Table state (RocksDB) directory")
    store: Literal["rocksdb", "memory"] = "rocksdb"
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    partitions: int = Field(4, ge=1, description="Partitions of each catalog topic")
    replication_factor: int = Field(1, ge=1)
    max_record_bytes: int = Field(1024 * 1024, ge=1024, description="Largest record accepted")
    session_timeout_s: float = Field(10.0, gt=0)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    heartbeat_period_s: float = Field(5.0, gt=0, description="system.heartbeats period")
    worker_id: str = Field(default_factory=_default_worker_id, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$")
    windows: str = Field(DEFAULT_WINDOWS, description="Candle windows: 1m tumbling, 5m/1m hopping")
    grace_s: float = Field(5.0, ge=0, description="How late (event time) a trade may still count")
    idle_close_s: float = Field(10.0, gt=0, description="After this much quiet a symbol's clock runs on with "
                                "wall time: its windows close as their end (plus grace) passes on it")
    idle_close_all: bool = Field(False, description="After idle_close_s of quiet close every open window at "
                                 "once (the end of a recording or a backtest): later trades inside are late")
    checkpoint_s: float = Field(1.0, gt=0, le=60, description="How often the candle fold and the analysis "
                                "write the rows they changed (a crash re-reads about this much of their input; "
                                "with thousands of symbols changing, longer: rows take at most a twentieth "
                                "of the time)")
    candle_history: int = Field(500, ge=1, description="Final candles kept per symbol and interval")
    standby_replicas: int = Field(0, ge=0, description="Standby copies of each table partition")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="Faust's guarantee for its agents (exactly_once: refused, see the README)")
    batch_max: int = Field(2000, ge=1, description="Most trades folded per batch")
    batch_wait_s: float = Field(0.05, gt=0, description="Longest wait to fill a batch")
    max_future_skew_s: float = Field(DEFAULT_MAX_FUTURE_SKEW_S, ge=0, le=86_400,
                                     description="How far past now an event time may be; later records are refused")
    extra_agents: str = Field("", pattern=r"^[A-Za-z0-9_.,]*$",
                              description="Modules of your own agents (comma-separated), each with install(app)")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_file: Path | None = None

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.security_protocol.startswith("SASL"):
            for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
                value = getattr(self, name)
                if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                    raise MissingSetting(name, f"required when security_protocol is {self.security_protocol}")
        return self

    anthropic_api_key: SecretStr | None = Field(None, description="Also read from ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, description="Messages API base URL (tests: a fake)")
    anthropic_model: str = "claude-haiku-4-5"
    anthropic_timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one API call")
    anthropic_max_retries: int = Field(2, ge=0, description="Retries of a failed API call")
    anthropic_retry_after_cap_s: float = Field(
        5.0, ge=0, description="Longest retry-after waited (a longer one: not retried) and longest backoff")
    analysis_intervals: str = Field(
        "", pattern=r"^[A-Za-z0-9/, ]*$", description="Candle intervals the analysis folds (comma-separated; "
        "empty: every window's). With thousands of symbols leave 1s out: ~0.3 ms of CPU a candle")
    enrich_inputs: str = Field("anomalies,indicators,news",
                               description="What is enriched: anomalies, indicators, news")
    enrich_snapshot_interval: str = Field("1m", description="Candle interval of the snapshots enriched")
    enrich_snapshot_every_s: float = Field(
        300.0, ge=0, description="Enrich a snapshot whose candle ends on a multiple of this; 0 = all")
    enrich_batch_max: int = Field(8, ge=1, description="Most events per Claude call")
    enrich_batch_wait_s: float = Field(0.5, gt=0, description="Longest wait to fill a batch")
    enrich_deadline_s: float = Field(15.0, gt=0, description="Longest an event waits for Claude")
    enrich_max_output_tokens: int = Field(1024, ge=64)
    enrich_context_tokens: int = Field(600, ge=50, description="Token budget of one event's context")
    enrich_history: int = Field(30, ge=0, description="Indicator snapshots kept per symbol as context")
    enrich_requests_per_min: int = Field(50, ge=0, description="0 = unlimited")
    enrich_input_tokens_per_min: int = Field(40_000, ge=0, description="0 = unlimited")
    enrich_output_tokens_per_min: int = Field(8_000, ge=0, description="0 = unlimited")
    enrich_daily_tokens: int = Field(2_000_000, ge=0, description="0 = unlimited")
    enrich_daily_usd: float = Field(5.0, ge=0, description="Daily spend cap; 0 = unlimited")
    enrich_usd_per_mtok_in: float = Field(1.0, ge=0, description="Price of input tokens")
    enrich_usd_per_mtok_out: float = Field(5.0, ge=0, description="Price of output tokens")
    enrich_breaker_failures: int = Field(5, ge=1, description="Failures in a row that open the breaker")
    enrich_breaker_cooldown_s: float = Field(30.0, gt=0, description="Open breaker waits this, then probes")
    enrich_cache_ttl_s: float = Field(7 * 86_400.0, gt=0, description="How long a cached answer holds")
    enrich_cache_memory_entries: int = Field(
        10_000, ge=0, description="Response-log entries a worker keeps in memory (all are on disk, in DATA_DIR)")
    enrich_refresh_fallbacks: bool = Field(
        False, description="Ask Claude again (within the budget) for events whose logged outcome was a fallback")
    assess_timeout_s: float = Field(20.0, gt=0, description="GET /assess answers 504 after this")
    assess_rate_per_min: float = Field(6.0, gt=0, le=60_000,
                                       description="GET /assess requests per minute per client address")
    assess_burst: int = Field(6, ge=1, le=1000, description="GET /assess requests a client may make at once")

    @field_validator("anthropic_api_key", mode="before")
    @classmethod
    def _api_key_from_env(cls, value: Any) -> Any:
        return value if value else os.environ.get("ANTHROPIC_API_KEY") or None

    @field_validator("enrich_inputs")
    @classmethod
    def _check_inputs(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = set(names) - {"anomalies", "indicators", "news"}
        if unknown:
            raise ValueError(f"unknown inputs {', '.join(sorted(unknown))}: use anomalies, indicators, news")
        return ",".join(names)
    # --- trading (issue 5) ---
    trading_account: str = Field("paper", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                 description="Paper account the strategy trades")
    trading_strategy: str = Field("ema_cross", description="Strategy (domain/strategy/strategies.py STRATEGIES)")
    trading_interval: str = Field("1m", description="Candle interval the strategy trades on")
    trading_enrichment_wait_s: float = Field(
        120.0, gt=0, description="Longest (wall clock) a decision waits for the enrichments it weighs")
    order_quantity: Decimal = Field(Decimal("0.01"), gt=0, description="Units per strategy order")
    initial_cash: Decimal = Field(Decimal(100_000), ge=0, description="Cash of a new paper account")
    fee_bps: Decimal = Field(Decimal(10), ge=0, description="Fee per fill, basis points of notional")
    slippage_bps: Decimal = Field(Decimal(5), ge=0, description="Fill price moved against us, basis points")
    fill_participation: Decimal = Field(Decimal("0.5"), gt=0, le=1, description="Share of a mark's size an order takes")
    max_position: Decimal = Field(Decimal(1), ge=0, description="Largest |position| per symbol (units)")
    max_gross_exposure: Decimal = Field(Decimal(1_000_000), ge=0, description="Largest sum |qty| x price")
    max_orders_per_minute: int = Field(30, ge=0, le=1000, description="Orders accepted per minute of event time")
    order_timeout_s: float = Field(30.0, gt=0, description="An order still open after this is expired")
    mark_interval_s: float = Field(1.0, gt=0, description="Event-time slice of trades in one fill mark")
    ledger_wait_s: float = Field(
        20.0, gt=0, description="Longest (wall clock) an account with no input at all waits for a strategy's "
        "progress before deciding what waits (the end of a feed; keep it above idle_close_s plus the analysis "
        "lag); with inputs coming, a silent strategy is waited for this plus trading_enrichment_wait_s")
    ledger_row_interval_s: float = Field(1.0, ge=0, description="Most a row lags its account, if cheap (README)")
    api_token: SecretStr | None = Field(
        None, description=f"Enables POST /commands, which requires it as a Bearer token "
                          f"(at least {MIN_API_TOKEN} characters)")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$",
                              description="Prefix of every topic: an isolated app instance (replays)")

    @field_validator("api_token")
    @classmethod
    def _check_api_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if len(token) < MIN_API_TOKEN:
            raise ValueError(f"must be at least {MIN_API_TOKEN} characters (leave it unset to turn "
                             "POST /commands off)")
        if len(token) > MAX_API_TOKEN or not _TOKEN.fullmatch(token):
            raise ValueError(f"must be at most {MAX_API_TOKEN} printable ASCII characters without spaces")
        return value

    @field_validator("trading_account")
    @classmethod
    def _check_account(cls, value: str) -> str:
        if not is_account(value):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("trading_strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        strategy_named(value)
        return value
    retry_max_attempts: int = Field(4, ge=1, description="Tries of a transiently failing record in all")
    retry_backoff_s: float = Field(1.0, gt=0, description="Wait before the 2nd try; doubles per try")
    canonical_url: str | None = Field(
        None, description="URL other workers reach this one's web views at (default: from web_host)")

    @field_validator("windows")
    @classmethod
    def _check_windows(cls, value: str) -> str:
        parse_windows(value)
        return value

    @property
    def window_specs(self) -> tuple[WindowSpec, ...]:
        """The candle windows, parsed."""
        return parse_windows(self.windows)

    @property
    def analysed_intervals(self) -> frozenset[str]:
        """The candle intervals the analysis folds (``domain.market.windows.chosen_intervals``)."""
        return chosen_intervals(self.analysis_intervals, self.window_specs,
                                (self.trading_interval, self.enrich_snapshot_interval))

    @model_validator(mode="after")
    def _check_analysed_intervals(self) -> Settings:
        try:
            self.analysed_intervals  # noqa: B018 - raises for a name no window has, or one left out
        except ValueError as error:
            raise MissingSetting("analysis_intervals", str(error)) from None
        return self

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        bad = [h for h in hosts if not _HOST_PORT.match(h)]
        if not hosts or bad:
            raise ValueError("expected HOST:PORT[,HOST:PORT...]")
        return ",".join(hosts)

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

    def kafka_client_config(self) -> dict[str, Any]:
        """Connection settings for confluent-kafka clients (security included)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.broker,
            "security.protocol": self.security_protocol,
            "logger": RDKAFKA_LOG,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_file:
            config["ssl.ca.location"] = str(self.ssl_ca_file)
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for Kafka connections (None without SSL)."""
        if "SSL" not in self.security_protocol:
            return None
        return ssl.create_default_context(cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None)

    @property
    def engine(self) -> EngineTraits:
        """What differs on this broker engine (``auto`` counts as Apache Kafka here; resolve it
        first with ``streams.kafka.admin.resolve_flavor``)."""
        return engine_traits(self.broker_flavor)

    @property
    def fetch_max_wait_ms(self) -> int:
        """How long a consumer's fetch may wait for records (see ``EngineTraits``)."""
        return self.engine.fetch_max_wait_ms

    def aiokafka_client_config(self) -> dict[str, Any]:
        """Connection settings for aiokafka clients (security included)."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.broker.split(","),
            "security_protocol": self.security_protocol,
            "ssl_context": self.ssl_context(),
        }
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = (self.sasl_password.get_secret_value()
                                             if self.sasl_password else None)
        return config


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
