"""`ticktide schemas register|check`: the Schema Registry workflow, so that production can
run with auto-registration off (``TICKTIDE_SCHEMA_REGISTRY_AUTO_REGISTER=false``).

Subjects follow the record-name strategy: one subject per event type, named by the
record's full name (``ticktide.market.Trade``), whatever topic carries it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from schemas.files import SchemaVersion, all_versions
from streams.cli.options import ConfigOption, settings_from
from streams.errors import ConfigError
from streams.kafka.registry import ConfluentRegistry, VersionState, embedded_schema_id

app = typer.Typer(help="Register the .avsc contract in a Schema Registry, or check it against one.",
                  no_args_is_help=True)
console = Console(soft_wrap=True, highlight=False)

RegistryOption = Annotated[
    str | None,
    typer.Option("--registry", help="Schema Registry URL [env TICKTIDE_SCHEMA_REGISTRY_URL]", show_default=False),
]


def _registry(config: ConfigOption, url: str | None) -> ConfluentRegistry:
    settings = settings_from(config, schema_registry_url=url)
    if not settings.schema_registry_url:
        raise ConfigError("no schema registry: give --registry URL or set TICKTIDE_SCHEMA_REGISTRY_URL")
    return ConfluentRegistry(settings.schema_registry_url)


def _in_order() -> list[SchemaVersion]:
    """Every local version: subjects by name, each subject's versions oldest first."""
    return [version for name in sorted(all_versions()) for version in all_versions()[name]]


def _line(found: VersionState) -> str:
    version = found.version
    where = f"{version.full_name} v{version.version}"
    if found.state == "registered":
        verb = "registered" if found.created else "already registered"
        return f"{verb:>18}  {where}  id {found.schema_id} (registry version {found.registry_version})"
    if found.state == "new subject":
        return f"{'new subject':>18}  {where}  (nothing to be compatible with yet)"
    return f"{found.state:>18}  {where}  ({found.level} against the registry's versions)"


@app.command("register")
def register(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    keep_embedded_ids: Annotated[bool, typer.Option(
        "--keep-embedded-ids",
        help="Import each version under the id the embedded registry gave it (its fingerprint), "
             "so records written before the switch keep resolving in any registry client "
             "(uses the subject's IMPORT mode; run it before anything else registers them)")] = False,
) -> None:
    """Register every schema version in order, oldest first per subject (idempotent)."""
    target = _registry(config, registry)
    versions = _in_order()
    created = 0
    for version in versions:
        found = target.register_version(version, keep_embedded_id=keep_embedded_ids)
        created += found.created
        console.print(_line(found))
        if keep_embedded_ids and found.schema_id != embedded_schema_id(version.schema):
            console.print(f"{'':>18}  note: registered before under id {found.schema_id}, not its embedded id")
    console.print(f"{created} new of {len(versions)} versions ({len(all_versions())} subjects, "
                  f"record-name strategy) in {target.url}")


@app.command("check")
def check(registry: RegistryOption = None, config: ConfigOption = None) -> None:
    """Ask the registry whether each local version is registered or compatible; exit 1 if not."""
    target = _registry(config, registry)
    states = [target.state_of(version) for version in _in_order()]
    for found in states:
        console.print(_line(found))
    refused = [s for s in states if s.state == "INCOMPATIBLE"]
    pending = sum(s.state != "registered" for s in states)
    if refused:
        console.print(f"{len(refused)} of {len(states)} versions would be refused by {target.url}: "
                      "fix the schema (a new field needs a default) or the subject's compatibility level")
        raise typer.Exit(1)
    console.print(f"compatible: {len(states) - pending} registered, {pending} to register "
                  f"(`ticktide schemas register`) in {target.url}")
