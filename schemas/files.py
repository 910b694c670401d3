"""Load the .avsc contract: every event schema, every version, shared types inlined.

Layout: ``schemas/<category>/<snake_name>.v<N>.avsc`` holds version N of one event.
Shared named types (the envelope, enums used by several events) live in
``schemas/common/*.avsc`` and are referenced by full name; loading inlines them so each
resulting schema is standalone (what a Confluent Schema Registry expects).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent
CATEGORIES = ("market", "analysis", "trading", "system", "user")
_VERSIONED = re.compile(r"^(?P<stem>[a-z_]+)\.v(?P<version>[1-9][0-9]*)\.avsc$")

Schema = dict[str, Any]


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one event schema, standalone (shared types inlined)."""

    full_name: str
    category: str
    version: int
    schema: Schema
    path: Path

    @property
    def text(self) -> str:
        """Canonical-ish JSON text, stable across processes (sorted keys)."""
        return json.dumps(self.schema, sort_keys=True, separators=(",", ":"))


def _full_name(schema: Schema) -> str:
    namespace = schema.get("namespace")
    return f"{namespace}.{schema['name']}" if namespace else str(schema["name"])


@cache
def shared_types() -> dict[str, Schema]:
    """Named types in schemas/common, by full name."""
    types: dict[str, Schema] = {}
    for path in sorted((SCHEMA_DIR / "common").glob("*.avsc")):
        schema = json.loads(path.read_text())
        types[_full_name(schema)] = schema
    return types


def _inline(node: Any, shared: dict[str, Schema], defined: set[str]) -> Any:
    """Replace the first reference to each shared type with its definition."""
    if isinstance(node, str):
        if node in shared and node not in defined:
            defined.add(node)
            return _inline(shared[node], shared, defined)
        return node
    if isinstance(node, list):
        return [_inline(branch, shared, defined) for branch in node]
    if isinstance(node, dict):
        kind = node.get("type")
        out = dict(node)
        if kind in ("record", "error"):
            defined.add(_full_name(node) if "." in node["name"] or "namespace" in node else node["name"])
            out["fields"] = [
                {**field, "type": _inline(field["type"], shared, defined)} for field in node["fields"]
            ]
        elif kind == "array":
            out["items"] = _inline(node["items"], shared, defined)
        elif kind == "map":
            out["values"] = _inline(node["values"], shared, defined)
        elif kind in ("enum", "fixed"):
            defined.add(_full_name(node))
        return out
    return node


def load_file(path: Path) -> Schema:
    """Read one .avsc and inline the shared types it references."""
    schema: Schema = _inline(json.loads(path.read_text()), shared_types(), set())
    return schema


@cache
def all_versions() -> dict[str, tuple[SchemaVersion, ...]]:
    """Every event schema by full name, its versions in ascending order."""
    found: dict[str, list[SchemaVersion]] = {}
    for category in CATEGORIES:
        for path in sorted((SCHEMA_DIR / category).glob("*.avsc")):
            match = _VERSIONED.match(path.name)
            if match is None:
                raise ValueError(f"{path}: schema files are named <name>.v<N>.avsc")
            schema = load_file(path)
            name = _full_name(schema)
            found.setdefault(name, []).append(
                SchemaVersion(name, category, int(match["version"]), schema, path)
            )
    return {
        name: tuple(sorted(versions, key=lambda v: v.version)) for name, versions in found.items()
    }


def latest(full_name: str) -> SchemaVersion:
    """The newest version of an event schema (what producers write)."""
    return all_versions()[full_name][-1]
