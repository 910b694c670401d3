"""Schema registries: where a wire-format schema id is resolved to a writer schema.

Two backends behind one small interface:

* ``EmbeddedRegistry`` needs no server. A schema's id is derived from the CRC-64-AVRO
  fingerprint of its Parsing Canonical Form, so every process, on every machine and after
  every restart, gives the same schema the same id, with nothing stored.
* ``ConfluentRegistry`` talks to a Confluent-compatible Schema Registry over HTTP (when
  ``TICKTIDE_SCHEMA_REGISTRY_URL`` is set). Subjects follow the record-name strategy
  (subject = the record's full name, e.g. ``ticktide.market.Trade``), since one topic may
  carry several event types. A writer registers its schema on first use, or, with
  auto-registration off, only looks it up (``ticktide schemas register`` registered it).

Records written while the embedded registry was in use carry fingerprint ids. A reader on a
Confluent registry that does not know such an id falls back to the fingerprints of the
shipped schemas, so those records stay readable after the switch; ``ticktide schemas
register --keep-embedded-ids`` imports every version under its fingerprint id, so that
any registry client (kcat, Kafka UI, Connect) reads them too, and writers keep those ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.files import Schema, SchemaVersion, all_versions
from streams.errors import RegistryError, UnknownSchemaId
from streams.settings import Settings


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


NOT_FOUND = 404
SUBJECT_NOT_FOUND = 40401
"""Confluent's error code for an unknown subject (40403: a schema the subject does not have)."""


@dataclass(frozen=True)
class VersionState:
    """What a registry says about one local schema version: ``state`` is ``registered``
    (now or before: ``schema_id`` and the registry's ``registry_version``), ``new subject``,
    ``compatible`` or ``INCOMPATIBLE`` (with the subject's compatibility ``level``)."""

    version: SchemaVersion
    state: str
    schema_id: int | None = None
    registry_version: int | None = None
    level: str = ""
    created: bool = False


class ConfluentRegistry:
    """A Confluent-compatible Schema Registry over HTTP (confluent-kafka's client)."""

    def __init__(self, url: str, client: Any | None = None, timeout_s: float = 3.0,
                 auto_register: bool = True) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.url = url
        self.auto_register = auto_register
        self._embedded: EmbeddedRegistry | None = None
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
                if self.auto_register:
                    self._ids[key] = self._client.register_schema(
                        version.full_name, RegistrySchema(version.text, "AVRO")
                    )
                else:
                    found: Any = self._client.lookup_schema(version.full_name, RegistrySchema(version.text, "AVRO"))
                    self._ids[key] = int(found.schema_id)
            except SchemaRegistryError as exc:
                if not self.auto_register and exc.http_status_code == NOT_FOUND:
                    raise RegistryError(
                        f"{version.full_name} v{version.version} is not registered in {self.url} and "
                        "auto-registration is off (TICKTIDE_SCHEMA_REGISTRY_AUTO_REGISTER=false): "
                        "run `ticktide schemas register`") from None
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
            if exc.http_status_code == NOT_FOUND:
                return self._written_before_the_switch(schema_id)
            raise RegistryError(f"registry {self.url}: {exc.error_message}") from None
        except Exception as exc:
            raise RegistryError(f"schema registry {self.url} unreachable: {exc}") from None
        schema: Schema = json.loads(str(text))
        return schema


    def _written_before_the_switch(self, schema_id: int) -> Schema:
        """The shipped schema whose fingerprint id this is (a record written with the embedded
        registry), when the registry does not know the id."""
        if self._embedded is None:
            self._embedded = EmbeddedRegistry()
        try:
            return self._embedded.lookup(schema_id)
        except UnknownSchemaId:
            raise UnknownSchemaId(f"schema id {schema_id} is not in {self.url} (nor a ticktide "
                                  "schema's embedded id)") from None

    # -- the `ticktide schemas` workflow ------------------------------------------------

    def state_of(self, version: SchemaVersion) -> VersionState:
        """Whether the registry has this version, else whether it would accept it now (its
        compatibility endpoint, under the subject's own rules)."""
        from confluent_kafka.schema_registry import Schema as RegistrySchema

        subject, schema = version.full_name, RegistrySchema(version.text, "AVRO")
        with self._errors_named(version):
            try:
                found = self._client.lookup_schema(subject, schema)
                return VersionState(version, "registered", found.schema_id, found.version)
            except _schema_registry_error() as exc:
                if getattr(exc, "http_status_code", None) != NOT_FOUND:
                    raise
                if getattr(exc, "error_code", None) == SUBJECT_NOT_FOUND:
                    return VersionState(version, "new subject")
            level = self.compatibility_level(subject)
            fits = self._client.test_compatibility(subject, schema)
            return VersionState(version, "compatible" if fits else "INCOMPATIBLE", level=level)

    def compatibility_level(self, subject: str) -> str:
        """The subject's compatibility level, else the registry's global one."""
        try:
            return str(self._client.get_compatibility(subject))
        except _schema_registry_error():
            return str(self._client.get_compatibility())

    def register_version(self, version: SchemaVersion, keep_embedded_id: bool = False) -> VersionState:
        """Register one version (the registry checks it against the subject's versions), or
        say it already is. ``keep_embedded_id`` imports it under its fingerprint id (the
        subject is put in IMPORT mode for it, then back to READWRITE)."""
        found = self.state_of(version)
        if found.state == "registered":
            return found
        if found.state == "INCOMPATIBLE":
            raise RegistryError(f"{version.full_name} v{version.version} is not {found.level}-compatible "
                                f"with what {self.url} holds: nothing registered from it on")
        with self._errors_named(version):
            schema_id = self._import(version) if keep_embedded_id else self._register_now(version)
            registered = self.state_of(version)
        return VersionState(version, "registered", schema_id, registered.registry_version, created=True)

    def _register_now(self, version: SchemaVersion) -> int:
        from confluent_kafka.schema_registry import Schema as RegistrySchema

        schema_id = int(self._client.register_schema(version.full_name, RegistrySchema(version.text, "AVRO")))
        self._ids[version.text] = schema_id
        return schema_id

    def _import(self, version: SchemaVersion) -> int:
        subject, schema_id = version.full_name, embedded_schema_id(version.schema)
        self._client.update_mode(subject, "IMPORT", force=True)
        try:
            # confluent-kafka's client has no call that gives the id: its REST client does.
            reply = self._client._rest_client.post(
                f"subjects/{_quote(subject)}/versions",
                body={"schema": version.text, "schemaType": "AVRO", "id": schema_id, "version": version.version})
        finally:
            self._client.update_mode(subject, "READWRITE")
        self._ids[version.text] = int(reply["id"])
        return int(reply["id"])

    def _errors_named(self, version: SchemaVersion) -> Any:
        return _RegistryErrors(self.url, f"{version.full_name} v{version.version}")


def _schema_registry_error() -> type[Exception]:
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    return SchemaRegistryError


def _quote(subject: str) -> str:
    from urllib.parse import quote

    return quote(subject, safe="")


class _RegistryErrors:
    """Turns a registry's refusal or absence into one RegistryError naming what was asked."""

    def __init__(self, url: str, what: str) -> None:
        self.url, self.what = url, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, RegistryError) or not isinstance(exc, Exception):
            return
        if isinstance(exc, _schema_registry_error()):
            message = getattr(exc, "error_message", str(exc))
            raise RegistryError(f"registry {self.url} refused {self.what}: {message}") from None
        raise RegistryError(f"schema registry {self.url} unreachable: {exc}") from None


def make_registry(url: str | None, auto_register: bool = True) -> SchemaRegistry:
    """The Confluent registry when a URL is configured, else the embedded one."""
    return ConfluentRegistry(url, auto_register=auto_register) if url else EmbeddedRegistry()


def registry_for(settings: Settings) -> SchemaRegistry:
    """The registry the settings name (``schema_registry_url``, ``schema_registry_auto_register``)."""
    return make_registry(settings.schema_registry_url, settings.schema_registry_auto_register)
