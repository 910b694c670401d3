"""The one error tree of ticktide. Raise the specific class; catch at the edges."""

from __future__ import annotations

from pydantic import ValidationError


class TickTideError(Exception):
    """Base of every error ticktide raises on purpose."""


class ConfigError(TickTideError):
    """A setting is missing or invalid (the message names the setting)."""


class MissingSetting(ValueError):
    """A setting a model validator refuses, by name: one another setting requires, or one
    that does not fit the others."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def explain_settings_error(error: ValidationError, env_prefix: str, secrets: frozenset[str]) -> str:
    """One line naming the first bad setting and its environment variable; the input of a
    setting in ``secrets`` is never shown, not even inside the message (a validator may quote it)."""
    first = error.errors()[0]
    name = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "extra_forbidden":
        return f"unknown setting {name!r} in the config file"
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, MissingSetting):
        name = cause.setting
    message = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    if name in secrets:
        for text in {str(value), repr(value)} if value not in (None, "") else set():
            message = message.replace(text, "***")
        shown = ""
    else:
        scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
        shown = f" (got {str(value)[:80]!r})" if scalar and not isinstance(cause, MissingSetting) else ""
    return f"invalid setting {name} ({env_prefix}{name.upper()}): {message}{shown}"


# --- codec ----------------------------------------------------------------------------


class DecodeError(TickTideError):
    """Bytes that are not a valid ticktide record."""


class TruncatedRecord(DecodeError):
    """Fewer bytes than the wire format or the schema needs."""


class BadMagicByte(DecodeError):
    """The first byte is not the Confluent wire-format magic byte 0."""


class UnknownSchemaId(DecodeError):
    """The schema id in the header is not known to the registry."""


class CorruptRecord(DecodeError):
    """The Avro body does not match its writer schema."""


class UnexpectedRecordType(DecodeError):
    """A valid record, but not of a type this topic or agent handles."""


class EncodeError(TickTideError):
    """A record cannot be encoded (a value does not fit its schema)."""


class RecordTooLarge(DecodeError, EncodeError):
    """The record exceeds the configured maximum size (encode or decode)."""


class WrongRecordType(EncodeError):
    """A record of a type the target topic does not carry."""


# --- registry, broker, input ----------------------------------------------------------


class RegistryError(TickTideError):
    """The schema registry refused or could not be reached."""


class BrokerError(TickTideError):
    """The broker could not be started or reached."""


class UnknownTopic(TickTideError):
    """A topic name that is not in the catalog."""


class InvalidInput(TickTideError):
    """Bad user input: a file row, a CLI value, a web query parameter."""


class InvalidValue(TickTideError):
    """A record that decodes but breaks its type's rules (domain/rules/validity.py): a range, a
    pattern or a time bound. ``field`` names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class OutOfSequence(TickTideError):
    """A trade batch that does not follow on from what was applied, and re-reading did not fill the gap."""

    def __init__(self, follows_offset: int, applied_through: int) -> None:
        super().__init__(f"batch follows source offset {follows_offset}, but only offsets up to "
                         f"{applied_through} were applied; re-reading did not bring the trades between")


class TransientError(TickTideError):
    """A failure that may pass if tried again later (a timeout, an unreachable service):
    agents retry it through system.retry with backoff, then dead-letter it."""
