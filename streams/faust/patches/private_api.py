"""The helpers over Faust's private API that the rest of ticktide uses, behind a version
guard (the patches beside it, lifecycle.py and embedded.py, are its only other users,
under the same guard).

faust-streaming is pinned (pyproject.toml); what is here was read in, and tested against,
that version. ``require_tested_faust`` (run when this module is imported, and by each
patch) stops them on another version, whose internals may differ silently: re-read them,
then move the pin.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import TP, AppT

TESTED_FAUST = "0.15.3"


def require_tested_faust(what: str) -> None:
    """Raise RuntimeError unless the installed Faust is the version ``what`` was written for."""
    if faust.__version__ != TESTED_FAUST:
        raise RuntimeError(f"{what} relies on faust-streaming {TESTED_FAUST} internals; "
                           f"{faust.__version__} is installed: re-check streams/faust/ before running it")


def recovery(app: AppT) -> Any:
    """The app's table recovery service (not in Faust's public types)."""
    return app.tables.recovery  # type: ignore[attr-defined]


def read_offset(app: AppT, tp: TP) -> int | None:
    """The offset the app's consumer last handed to a stream for ``tp`` (None: nothing yet)."""
    offset: int | None = app.consumer._read_offset.get(tp)  # type: ignore[attr-defined]
    return offset


class _PartitionMarker:
    """Stands in for Faust's current event: what a table write needs is its partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition)


@contextmanager
def partition_scope(topic: str, partition: int) -> Iterator[None]:
    """Route table writes to ``partition`` (of the tables' source topic ``topic``).

    Faust takes the partition of a table write from the current stream event, which a
    batched fold or a timer does not have; the rows we write belong to the partition of
    the source records they were folded from, so we say so explicitly."""
    marker = _PartitionMarker(topic, partition)
    token = _current_event.set(weakref.ref(marker))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


require_tested_faust("streams.faust.patches.private_api")
