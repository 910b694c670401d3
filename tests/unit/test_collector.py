"""The worker's collector policy: what survives a collection of generation 1 or 2 is frozen
(a full collection scans only what is new since), and the hourly sweep still collects cycles
among frozen objects."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.ops import collector


class Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def freezing() -> Iterator[None]:
    collector.freeze_what_survives()
    try:
        yield
    finally:
        collector.stop_freezing()


def cycle() -> Node:
    """One of two objects referring to each other."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


@pytest.mark.usefixtures("freezing")
@pytest.mark.parametrize("generation", [1, 2])
def test_what_survives_a_collection_of_generation_1_or_2_is_out_of_the_next_ones_sight(generation: int) -> None:
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    gc.collect(generation)
    assert gc.get_freeze_count() >= before + len(kept)  # the survivors, frozen
    tracked = {id(obj) for obj in gc.get_objects()}  # what a collection scans
    assert not any(id(node) in tracked for node in kept)
    collector.freeze_what_survives()  # again (a second worker start in one process): one hook
    assert gc.callbacks.count(collector.freeze_survivors) == 1


@pytest.mark.usefixtures("freezing")
def test_a_young_collection_leaves_what_survives_it_in_sight() -> None:
    kept = [Node() for _ in range(1000)]
    gc.collect(0)
    tracked = {id(obj) for obj in gc.get_objects()}
    assert all(id(node) in tracked for node in kept)  # promoted to generation 1, not frozen


@pytest.mark.usefixtures("freezing")
def test_a_cycle_frozen_while_alive_is_kept_by_full_collections_and_collected_by_the_sweep() -> None:
    node = cycle()
    gc.collect()  # alive: frozen with the other survivors
    alive = weakref.ref(node)
    del node  # now garbage, but frozen
    gc.collect()
    assert alive() is not None, "out of the collector's sight: a full collection does not free it"
    collected = collector.sweep()
    assert alive() is None and collected >= 2
    assert gc.get_freeze_count() > 0  # the survivors frozen again


def test_stopping_leaves_nothing_frozen_and_no_hook() -> None:
    collector.freeze_what_survives()
    collector.stop_freezing()
    assert gc.get_freeze_count() == 0 and collector.freeze_survivors not in gc.callbacks
