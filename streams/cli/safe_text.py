"""Text for the terminal: untrusted text (from topics anyone may write to) made safe to
print, and counts with the right plural."""

from __future__ import annotations

from rich.markup import escape


def printable(text: str) -> str:
    """Control characters escaped (``\\x1b``...): no terminal escape sequences get through."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def plain(text: str) -> str:
    """``printable`` and markup-escaped, for rich's console.print."""
    return escape(printable(text))


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 partition``, ``4 partitions``, ``0 dead letters`` (``plural`` if not noun + s)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
