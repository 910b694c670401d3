"""What a file reader yields per row: a parsed trade or a rejection with its reason."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import Trade


@dataclass(frozen=True)
class ParsedRow:
    """A row that became a valid Trade; ``line`` is the 1-based physical line."""

    line: int
    event: Trade


@dataclass(frozen=True)
class RejectedRow:
    """A row that did not; ``reason`` names the field and value, ``raw`` is the line."""

    line: int
    reason: str
    raw: str


Row = ParsedRow | RejectedRow
"""One row of an input file."""
