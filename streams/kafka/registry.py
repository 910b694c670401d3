"""Schema registries: where a wire-format schema id is resolved to a writer schema.

Two backends behind one small interface:

* ``EmbeddedRegistry`` needs no server. A schema's id is derived from the CRC-64-AVRO
  fingerprint of its Parsing Canonical Form, so every process, on every machine and after
  every restart, gives the same schema the same id, with nothing stored.
* ``ConfluentRegistry`` talks to a Confluent-compatible Schema Registry over HTTP (when
  ``TICKTIDE_SCHEMA_REGISTRY_URL`` is set). Subjects follow the record-name strategy
  (subject = the record's full name), since one topic may carry several event types.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.files import Schema, SchemaVersion, all_versions
from streams.errors import RegistryError, UnknownSchemaId


class SchemaRegistry(Protocol):
    """Maps schemas to ids (for writers) and ids back to schemas (for readers)."""

    def register(self, version: SchemaVersion) -> int:
        """The id of this schema, registering it if the backend needs that."""
        ...

    def lookup(self, schema_id: int) -> Schema:
        """The writer schema with this id; raises UnknownSchemaId."""
        ...


def embedded_schema_id(schema: Schema) -> int:
    """A stable 31-bit id from the schema's canonical-form fingerprint."""
    canonical = to_parsing_canonical_form(schema)
    return int(fingerprint(canonical, "CRC-64-AVRO")[:8], 16) & 0x7FFF_FFFF


class EmbeddedRegistry:
    """A registry with no server: ids are fingerprints of the shipped .avsc files."""

    def __init__(self, versions: dict[str, tuple[SchemaVersion, ...]] | None = None) -> None:
        self._by_id: dict[int, Schema] = {}
        for history in (versions or all_versions()).values():
            for version in history:
                self._add(version.schema)

    def _add(self, schema: Schema) -> int:
        schema_id = embedded_schema_id(schema)
        known = self._by_id.setdefault(schema_id, schema)
        if to_parsing_canonical_form(known) != to_parsing_canonical_form(schema):
            raise RegistryError(f"schema id collision on {schema_id}: rename or change a schema")
        return schema_id

    def register(self, version: SchemaVersion) -> int:
        return self._add(version.schema)

    def lookup(self, schema_id: int) -> Schema:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaId(f"schema id {schema_id} is not a ticktide schema") from None


class ConfluentRegistry:
    """A Confluent-compatible Schema Registry over HTTP (confluent-kafka's client)."""

    def __init__(self, url: str, client: Any | None = None, timeout_s: float = 3.0) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.url = url
        # Without a timeout httpx waits forever on a registry that accepts and never answers.
        self._client = client or SchemaRegistryClient(
            {"url": url, "timeout": timeout_s, "max.retries": 1, "retries.wait.ms": 200}
        )
        self._ids: dict[str, int] = {}

    def register(self, version: SchemaVersion) -> int:
        from confluent_kafka.schema_registry import Schema as RegistrySchema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        key = version.text
        if key not in self._ids:
            try:
                self._ids[key] = self._client.register_schema(
                    version.full_name, RegistrySchema(version.text, "AVRO")
                )
            except SchemaRegistryError as exc:
                raise RegistryError(
                    f"registry {self.url} refused {version.full_name} v{version.version}: "
                    f"{exc.error_message}"
                ) from None
            except Exception as exc:  # connection errors come as several types
                raise RegistryError(f"schema registry {self.url} unreachable: {exc}") from None
        return self._ids[key]

    def lookup(self, schema_id: int) -> Schema:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            text = self._client.get_schema(schema_id).schema_str
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchemaId(f"schema id {schema_id} is not in {self.url}") from None
            raise RegistryError(f"registry {self.url}: {exc.error_message}") from None
        except Exception as exc:
            raise RegistryError(f"schema registry {self.url} unreachable: {exc}") from None
        schema: Schema = json.loads(str(text))
        return schema


def make_registry(url: str | None) -> SchemaRegistry:
    """The Confluent registry when a URL is configured, else the embedded one."""
    return ConfluentRegistry(url) if url else EmbeddedRegistry()
