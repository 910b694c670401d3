"""A fake Confluent Schema Registry: real HTTP on 127.0.0.1, state in memory.

Speaks the subset of the REST API that ``confluent_kafka.schema_registry``'s client uses to
register and fetch schemas, test compatibility, and read or set compatibility levels and
modes, with Confluent's semantics: ids are global and given by schema content (the same
text under any subject gets the same id), versions count per subject, errors are
``{"error_code": ..., "message": ...}`` JSON with Confluent's codes.

Compatibility is really checked, with the ``avro`` package's reader/writer checker (the
rules of Avro's specification, as Confluent's own registry applies them): a registration
that breaks the subject's level (BACKWARD by default; FORWARD, FULL, their _TRANSITIVE
forms, NONE) is refused with 409, as ``POST /compatibility/subjects/S/versions/V`` says.
In IMPORT mode (``PUT /mode/S``) a registration may name its id and version, and nothing
is checked, as Confluent does for migrations.

    with FakeSchemaRegistry() as registry:
        client = SchemaRegistryClient({"url": registry.url})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

SUBJECT_NOT_FOUND = (404, 40401, "Subject not found")
VERSION_NOT_FOUND = (404, 40402, "Version not found")
SCHEMA_NOT_FOUND = (404, 40403, "Schema not found")
INVALID_SCHEMA = (422, 42201, "Invalid schema")
INVALID_LEVEL = (422, 42203, "Invalid compatibility level")
INCOMPATIBLE = (409, 409, "Schema being registered is incompatible with an earlier schema")
NOT_IMPORT_MODE = (422, 42205, "Subject is not in import mode: an id cannot be given")
ID_IN_USE = (422, 42207, "Schema id is already used by another schema")
SUBJECT_LEVEL_NOT_SET = (404, 40408, "Subject does not have subject-level compatibility configured")
LEVELS = ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE")
ROUTE_NOT_FOUND = (404, 404, "HTTP 404 Not Found")

Reply = tuple[int, Any]


class _Error(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.reply: Reply = (status, {"error_code": code, "message": message})


class _State:
    """Schemas by id and subjects' version lists; every method holds the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.schemas: dict[int, dict[str, Any]] = {}  # id -> {"schema", "schemaType"?}
        self.ids: dict[tuple[str, str], int] = {}  # (type, text) -> id
        self.subjects: dict[str, list[int]] = {}  # subject -> ids by version (1-based)
        self.level = "BACKWARD"
        self.levels: dict[str, str] = {}  # subject-level compatibility
        self.modes: dict[str, str] = {}

    def register(self, subject: str, body: dict[str, Any]) -> Reply:
        text, kind = _schema_of(body)
        with self.lock:
            importing = self.modes.get(subject) == "IMPORT"
            if ("id" in body or "version" in body) and not importing:
                raise _Error(*NOT_IMPORT_MODE)
            versions = self.subjects.setdefault(subject, [])
            schema_id = self.ids.get((kind, text))
            if schema_id in versions:
                return 200, {"id": schema_id}
            if not importing and not self._fits(subject, text, self._earlier(subject, "all")):
                raise _Error(*INCOMPATIBLE)
            if schema_id is None:
                schema_id = int(body["id"]) if importing and "id" in body else max(self.schemas, default=0) + 1
                if schema_id in self.schemas:
                    raise _Error(*ID_IN_USE)
                self.ids[(kind, text)] = schema_id
                self.schemas[schema_id] = {"schema": text, "schemaType": kind}
            versions.append(schema_id)
        return 200, {"id": schema_id}

    def _earlier(self, subject: str, version: str) -> list[str]:
        """The texts a candidate is checked against: the one version named, or (``all``) the
        latest or every version, as the subject's level says."""
        ids = self.subjects.get(subject, [])
        if version != "all":
            return [self.schemas[ids[self._number(subject, version) - 1]]["schema"]]
        level = self.levels.get(subject, self.level)
        chosen = ids if level.endswith("_TRANSITIVE") else ids[-1:]
        return [self.schemas[i]["schema"] for i in chosen]

    def _number(self, subject: str, version: str) -> int:
        ids = self.subjects.get(subject)
        if ids is None:
            raise _Error(*SUBJECT_NOT_FOUND)
        number = len(ids) if version in ("latest", "-1") else _int(version, VERSION_NOT_FOUND)
        if not 1 <= number <= len(ids):
            raise _Error(*VERSION_NOT_FOUND)
        return number

    def _fits(self, subject: str, text: str, earlier: list[str]) -> bool:
        level = self.levels.get(subject, self.level).removesuffix("_TRANSITIVE")
        checks: list[Callable[[str], bool]] = {
            "NONE": [], "BACKWARD": [lambda old: _reads(text, old)], "FORWARD": [lambda old: _reads(old, text)],
            "FULL": [lambda old: _reads(text, old), lambda old: _reads(old, text)]}[level]
        return all(check(old) for old in earlier for check in checks)

    def compatible(self, subject: str, version: str, body: dict[str, Any]) -> Reply:
        text, _ = _schema_of(body)
        with self.lock:
            if version != "all":
                self._number(subject, version)
            return 200, {"is_compatible": self._fits(subject, text, self._earlier(subject, version))}

    def config(self, subject: str | None, body: dict[str, Any] | None) -> Reply:
        with self.lock:
            if body is not None:
                level = body.get("compatibility")
                if level not in LEVELS:
                    raise _Error(*INVALID_LEVEL)
                if subject is None:
                    self.level = level
                else:
                    self.levels[subject] = level
                return 200, {"compatibility": level}
            if subject is not None and subject not in self.levels:
                raise _Error(*SUBJECT_LEVEL_NOT_SET)
            return 200, {"compatibilityLevel": self.levels[subject] if subject else self.level}

    def mode(self, subject: str, body: dict[str, Any]) -> Reply:
        mode = body.get("mode")
        if mode not in ("IMPORT", "READONLY", "READWRITE"):
            raise _Error(422, 42204, "Invalid mode")
        with self.lock:
            self.modes[subject] = mode
        return 200, {"mode": mode}

    def lookup(self, subject: str, body: dict[str, Any]) -> Reply:
        text, kind = _schema_of(body)
        with self.lock:
            versions = self.subjects.get(subject)
            if versions is None:
                raise _Error(*SUBJECT_NOT_FOUND)
            schema_id = self.ids.get((kind, text))
            if schema_id not in versions:
                raise _Error(*SCHEMA_NOT_FOUND)
            return 200, self._registered(subject, versions.index(schema_id) + 1, schema_id)

    def schema(self, schema_id: int) -> Reply:
        with self.lock:
            if schema_id not in self.schemas:
                raise _Error(*SCHEMA_NOT_FOUND)
            stored = self.schemas[schema_id]
            reply = {"schema": stored["schema"]}
            if stored["schemaType"] != "AVRO":  # Confluent omits the default type
                reply["schemaType"] = stored["schemaType"]
            return 200, reply

    def subjects_of(self, schema_id: int) -> Reply:
        with self.lock:
            if schema_id not in self.schemas:
                raise _Error(*SCHEMA_NOT_FOUND)
            return 200, sorted(s for s, ids in self.subjects.items() if schema_id in ids)

    def versions(self, subject: str) -> Reply:
        with self.lock:
            if subject not in self.subjects:
                raise _Error(*SUBJECT_NOT_FOUND)
            return 200, list(range(1, len(self.subjects[subject]) + 1))

    def version(self, subject: str, version: str) -> Reply:
        with self.lock:
            ids = self.subjects.get(subject)
            if ids is None:
                raise _Error(*SUBJECT_NOT_FOUND)
            number = len(ids) if version in ("latest", "-1") else _int(version, VERSION_NOT_FOUND)
            if not 1 <= number <= len(ids):
                raise _Error(*VERSION_NOT_FOUND)
            return 200, self._registered(subject, number, ids[number - 1])

    def _registered(self, subject: str, version: int, schema_id: int) -> dict[str, Any]:
        stored = self.schemas[schema_id]
        return {"subject": subject, "version": version, "id": schema_id, **stored}


def _reads(reader: str, writer: str) -> bool:
    """Can a reader with schema ``reader`` read data written with ``writer`` (Avro's rules)?"""
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
    from avro.schema import parse

    result = ReaderWriterCompatibilityChecker().get_compatibility(reader=parse(reader), writer=parse(writer))
    return result.compatibility is SchemaCompatibilityType.compatible


def _schema_of(body: dict[str, Any]) -> tuple[str, str]:
    """(text, type) of a registration body; an AVRO text must at least be JSON."""
    text = body.get("schema")
    kind = body.get("schemaType") or "AVRO"
    if not isinstance(text, str):
        raise _Error(*INVALID_SCHEMA)
    if kind == "AVRO":
        try:
            json.loads(text)
        except ValueError:
            raise _Error(*INVALID_SCHEMA) from None
    return text, kind


def _int(text: str, error: tuple[int, int, str]) -> int:
    try:
        return int(text)
    except ValueError:
        raise _Error(*error) from None


def _route(state: _State, method: str, parts: list[str], body: dict[str, Any]) -> Reply:
    """Dispatch one request by method and path segments."""
    match method, parts:
        case "POST", ["subjects", subject, "versions"]:
            return state.register(subject, body)
        case "POST", ["subjects", subject]:
            return state.lookup(subject, body)
        case "GET", ["schemas", "ids", schema_id]:
            return state.schema(_int(schema_id, SCHEMA_NOT_FOUND))
        case "GET", ["schemas", "ids", schema_id, "subjects"]:
            return state.subjects_of(_int(schema_id, SCHEMA_NOT_FOUND))
        case "GET", ["subjects"]:
            with state.lock:
                return 200, sorted(state.subjects)
        case "GET", ["subjects", subject, "versions"]:
            return state.versions(subject)
        case "GET", ["subjects", subject, "versions", version]:
            return state.version(subject, version)
        case "POST", ["compatibility", "subjects", subject, "versions", version]:
            return state.compatible(subject, version, body)
        case "POST", ["compatibility", "subjects", subject, "versions"]:
            return state.compatible(subject, "all", body)
        case "GET", ["config"]:
            return state.config(None, None)
        case "GET", ["config", subject]:
            return state.config(subject, None)
        case "PUT", ["config"]:
            return state.config(None, body)
        case "PUT", ["config", subject]:
            return state.config(subject, body)
        case "PUT", ["mode", subject]:
            return state.mode(subject, body)
    raise _Error(*ROUTE_NOT_FOUND)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped server refuses at once instead of
    # answering on a kept-alive connection.
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        path = urlsplit(self.path).path
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        self.server.requests.append((method, path))
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise _Error(400, 400, "Unrecognized request body") from None
            if not isinstance(body, dict):
                raise _Error(400, 400, "Request body must be a JSON object")
            status, reply = _route(self.server.state, method, parts, body)
        except _Error as error:
            status, reply = error.reply
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = _State()
        self.requests: list[tuple[str, str]] = []


class FakeSchemaRegistry:
    """A running fake registry on a free local port; ``url`` to reach it, ``stop()`` to end."""

    def __init__(self) -> None:
        self._server = _Server()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns at once
            name="fake-schema-registry",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request served so far, in order."""
        return list(self._server.requests)

    @property
    def schema_ids(self) -> list[int]:
        """Ids of every schema registered so far."""
        with self._server.state.lock:
            return sorted(self._server.state.schemas)

    def stop(self) -> None:
        """Stop serving and close the port (idempotent): clients then get refused."""
        if not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSchemaRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
