"""Untrusted text (from topics anyone may write to) made safe to print on a terminal."""

from __future__ import annotations

from rich.markup import escape


def printable(text: str) -> str:
    """Control characters escaped (``\\x1b``...): no terminal escape sequences get through."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def plain(text: str) -> str:
    """``printable`` and markup-escaped, for rich's console.print."""
    return escape(printable(text))
