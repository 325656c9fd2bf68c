"""The cyclic garbage collector paused around bulk work that makes no reference cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, restoring its previous state after.

    Validating a config of thousands of readers and matching them allocate millions of small
    acyclic objects (entries, masks, keys, result lists); each allocation burst would make the
    collector walk everything alive many times over (about a quarter of the time of
    bench/match.py, a sixth of loading 100,000 readers). Nothing there creates reference
    cycles, so pausing it loses nothing.

    What was made meanwhile is mostly kept (the rankings live as long as the run): it is moved
    to the oldest generation at once (``freeze`` then ``unfreeze``: two list merges, and the
    young generation's count starts again at zero) rather than scanned as young objects by the
    collection the first allocation after the pause would start (a pass over millions of
    objects: a tenth of ranking 100,000 readers by meaning). A full collection still sees them.
    Not when the process froze objects of its own (a pre-forking server does): those stay put.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
