"""Copying a whole store to another backend (``digest store migrate --to URL``), verified.

The target must be empty (a fresh SQLite file or PostgreSQL database; its schema is brought up
to date on open, like the source's). Every table is copied in one transaction on the target,
ids kept, then the two stores' counts are compared; any difference is an error, and the source
is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.errors import StoreError
from digest.store import Store, StoreStats

COMPARED = ("papers", "sent", "pending", "failed", "digests", "subscribers", "runs")


@dataclass(frozen=True)
class Copied:
    """What a copy moved: rows per table, and the counts both stores agree on."""

    rows: dict[str, int]
    stats: StoreStats


def copy_store(source: Store, target: Store) -> Copied:
    """Copy ``source`` into the empty ``target``; StoreError when either cannot, or when the
    counts differ afterwards."""
    before = target.stats()
    if before.papers or before.digests or before.runs or before.subscribers:
        raise StoreError(
            "the target store is not empty",
            where=target.location,
            hint="migrate into a new database or file (or `digest seen reset` it first)",
        )
    tables = source.dump()
    target.load(tables)
    was, now = source.stats(), target.stats()
    differ = [f"{name} {getattr(was, name)} -> {getattr(now, name)}" for name in COMPARED
              if getattr(was, name) != getattr(now, name)]  # fmt: skip
    if differ:
        raise StoreError(
            "the copy does not match: " + ", ".join(differ),
            where=target.location,
            hint="the source is unchanged; empty the target and try again",
        )
    return Copied({table: len(rows) for table, (_, rows) in tables.items()}, now)
