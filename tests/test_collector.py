"""The cyclic garbage collector paused around bulk work."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from digest.collector import cyclic_gc_paused


class Node:
    """A tracked object that can hold a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def collector() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_paused_inside_and_restored_after(collector: None) -> None:
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # paused by the caller: stays so


def test_what_was_made_inside_is_old_at_once_and_a_cycle_still_collected(
    collector: None,
) -> None:
    with cyclic_gc_paused():
        kept = [Node() for _ in range(10_000)]  # many young objects, as rankings are
        cycle = Node()
        cycle.other = Node()
        cycle.other.other = cycle
    young = {id(o) for o in gc.get_objects(generation=0)}
    assert not any(id(node) in young for node in kept)
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(node) in oldest for node in kept[:100])
    assert gc.get_freeze_count() == 0
    gone = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert gone() is None


def test_objects_the_process_froze_stay_frozen(collector: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with cyclic_gc_paused():
            made = [Node() for _ in range(100)]
        assert gc.get_freeze_count() == frozen
        assert made
    finally:
        gc.unfreeze()
