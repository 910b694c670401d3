"""Where the broker is and how to reach it: bootstrap servers, its engine, the schema
registry, the catalog topics' shape, and the connection's security."""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from streams.engine import EngineTraits, engine_traits
from streams.errors import MissingSetting

# librdkafka's own log lines (connection refused, retries) go here, not to stderr: the
# commands turn failures into one clear error; run with log_level=debug to see them.
RDKAFKA_LOG = logging.getLogger("ticktide.rdkafka")
RDKAFKA_LOG.propagate = False
RDKAFKA_LOG.addHandler(logging.NullHandler())
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5}$")


class BrokerSettings(BaseModel):
    """The broker's part of ``Settings``."""

    broker: str = Field("localhost:9092", description="Kafka bootstrap servers, HOST:PORT[,...]")
    broker_flavor: Literal["auto", "kafka", "tansu"] = Field(
        "auto", description="tansu turns off checks the embedded broker cannot pass"
    )
    schema_registry_url: str | None = Field(None, description="Confluent Schema Registry URL")
    schema_registry_auto_register: bool = Field(
        True, description="Writers register their schemas; false: only look them up (`ticktide schemas register`)")
    partitions: int = Field(4, ge=1, description="Partitions of each catalog topic")
    replication_factor: int = Field(1, ge=1)
    max_record_bytes: int = Field(1024 * 1024, ge=1024, description="Largest record accepted")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$",
                              description="Prefix of every topic: an isolated app instance (replays)")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_file: Path | None = None

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        bad = [h for h in hosts if not _HOST_PORT.match(h)]
        if not hosts or bad:
            raise ValueError("expected HOST:PORT[,HOST:PORT...]")
        return ",".join(hosts)

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Self:
        if self.security_protocol.startswith("SASL"):
            for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
                value = getattr(self, name)
                if not (value.get_secret_value() if isinstance(value, SecretStr) else value):
                    raise MissingSetting(name, f"required when security_protocol is {self.security_protocol}")
        return self

    @property
    def engine(self) -> EngineTraits:
        """What differs on this broker engine (``auto`` counts as Apache Kafka here; resolve it
        first with ``streams.kafka.admin.resolve_flavor``)."""
        return engine_traits(self.broker_flavor)

    @property
    def fetch_max_wait_ms(self) -> int:
        """How long a consumer's fetch may wait for records (see ``EngineTraits``)."""
        return self.engine.fetch_max_wait_ms

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
