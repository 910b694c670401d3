"""Python's cyclic collector, kept from stopping the fold for long while a worker's state grows.

A full collection scans every object the collector tracks. A worker's state (thousands of
symbols' candles, the ledger's marks) grows for minutes after it starts, and Python runs a
full collection each time the objects that survived the last one grew by a quarter: with
5,000 symbols that was a 90-215 ms pause every 8-20 s, every trade arriving meanwhile that
much later. Freezing what survived each full collection cut that to what was promoted since
the last one, still 50-75 ms every 4-13 s (30-65k objects: the open windows' bars, states
and fetched records that outlived two young collections). So here what survives a
generation-1 collection is frozen (out of the collector's sight; objects still go as soon as
nothing refers to them): a full collection finds next to nothing left to scan. Cycles among
frozen objects would be kept: at 5,000 symbols the hourly sweep (``SWEEP_S``) found 10-110
such objects a minute, which it collects when it gives every frozen object back to the
collector for one full collection, then freezes the survivors again.
"""

from __future__ import annotations

import gc
from typing import Any

SWEEP_S = 3600.0
"""How often the frozen objects are collected too (one full pause of ~0.1-0.3 s)."""


def freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """A ``gc.callbacks`` hook: after a collection of generation 1 or 2, freeze what
    survived it (the young generation-0 collections are left to run as they are)."""
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


def freeze_what_survives() -> None:
    """Freeze what exists now and, from now on, what survives each collection of generation 1 or 2."""
    gc.freeze()
    if freeze_survivors not in gc.callbacks:
        gc.callbacks.append(freeze_survivors)


def stop_freezing() -> None:
    """Back to Python's own way: nothing frozen, no hook."""
    if freeze_survivors in gc.callbacks:
        gc.callbacks.remove(freeze_survivors)
    gc.unfreeze()


def sweep() -> int:
    """Collect every object once, frozen ones included (cycles among them go), then freeze
    the survivors again; how many objects were collected."""
    gc.unfreeze()
    collected = gc.collect()
    gc.freeze()
    return collected
