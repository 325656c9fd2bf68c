"""The Store interface: papers already seen, the per-subscriber delivery ledger, the run lock.

Every backend (``sqlite`` by default, see :data:`digest.registry.STORES`) keeps these promises
(DESIGN.md 1-4), and the pipeline relies on nothing else:

- A paper is *known* when the store has it by versionless arXiv id or by any title it was ever
  seen under (the rule is :mod:`digest.identity`'s); known papers come back under the key they
  were first stored with, so the ledger never holds one paper under two keys.
- The ledger holds, per subscriber and paper, ``pending`` before a send, ``sent`` only once the
  transport accepted the message, ``failed`` when it refused. A ``sent`` mark is never turned
  back, and anything not ``sent`` stays owed (:meth:`Store.owed_papers`), whatever its age.
- Every call that writes is one transaction: nothing is half-written.
- A store opened ``readonly`` never creates, writes or migrates anything.
- :meth:`Store.run_lock` lets one run at a time send; a run that dies releases it.

Reads for the plan are made for all subscribers in one call each (:meth:`Store.owed_papers`,
:meth:`Store.delivered_keys`), and cover only the papers that can still be offered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from digest import registry
from digest.errors import StoreError
from digest.models import Paper

__all__ = ["Observed", "SeenPaper", "Store", "StoreStats", "open_store", "scheme_of"]


@dataclass(frozen=True)
class Observed:
    """What :meth:`Store.observe` found: papers never seen before, and papers already known.

    Each paper appears once (duplicates within the input are merged), under its canonical key.
    """

    new: list[Paper]
    known: list[Paper]


@dataclass(frozen=True)
class SeenPaper:
    """One row of ``digest seen list``."""

    key: str
    arxiv_id: str | None
    title: str
    first_seen: dt.datetime
    sent: int


@dataclass(frozen=True)
class StoreStats:
    """Counts for ``digest seen stats``."""

    location: str
    schema_version: int
    size: int  # bytes on disk (the SQLite file and its -wal)
    papers: int
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    sent: int
    pending: int
    failed: int
    subscribers: int
    runs: int

    def as_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in display order."""
        return [
            ("store", self.location),
            ("schema version", str(self.schema_version)),
            ("file size (bytes)", str(self.size)),
            ("papers seen", str(self.papers)),
            ("first seen", self.first_seen.isoformat() if self.first_seen else "-"),
            ("last seen", self.last_seen.isoformat() if self.last_seen else "-"),
            ("deliveries sent", str(self.sent)),
            ("deliveries pending", str(self.pending)),
            ("deliveries failed", str(self.failed)),
            ("subscribers", str(self.subscribers)),
            ("runs", str(self.runs)),
        ]


class Store(Protocol):
    """What the pipeline and the ``seen`` commands need of a store (see the module docstring)."""

    location: str
    readonly: bool

    def close(self) -> None:
        """Release the connection."""

    def run_lock(self, *, now: dt.datetime | None = None) -> AbstractContextManager[None]:
        """Hold the run lock for a ``with`` block, or raise ``LockedError`` at once."""

    def observe(
        self, papers: Sequence[Paper], now: dt.datetime, *, record: bool = True
    ) -> Observed:
        """Split ``papers`` into new and known ones; with ``record``, remember them all."""

    def recent_papers(self, since: dt.datetime) -> list[Paper]:
        """The latest record of every paper first seen at or after ``since``, newest first."""

    def owed_papers(self, emails: Collection[str]) -> dict[str, list[Paper]]:
        """Per address (as given), the papers marked pending or failed and never sent."""

    def delivered_keys(self, emails: Collection[str], keys: Collection[str]) -> dict[str, set[str]]:
        """Per address, which of ``keys`` not to offer again: sent, or passed over by a sent
        digest because of the subscriber's ``max_papers``."""

    def begin_run(self, now: dt.datetime, *, dry_run: bool = False) -> int:
        """Record the start of a run and return its id."""

    def finish_run(self, run_id: int, now: dt.datetime, summary: str) -> None:
        """Record the end of run ``run_id`` and its summary."""

    def mark_pending(self, run_id: int, email: str, keys: Sequence[str], now: dt.datetime) -> None:
        """Record that ``keys`` are about to be sent to ``email`` (a sent mark stays sent)."""

    def mark_sent(
        self,
        run_id: int,
        email: str,
        keys: Sequence[str],
        message_id: str,
        now: dt.datetime,
        *,
        passed_over: Sequence[str] = (),
    ) -> None:
        """Record that the transport accepted ``message_id`` carrying ``keys`` for ``email``."""

    def mark_failed(
        self, run_id: int, email: str, keys: Sequence[str], reason: str, now: dt.datetime
    ) -> None:
        """Record that sending ``keys`` to ``email`` failed; they stay owed."""

    def list_seen(self, limit: int | None = None) -> list[SeenPaper]:
        """The papers seen, newest first, with how many subscribers received each."""

    def stats(self) -> StoreStats:
        """Counts of papers, deliveries by status, subscribers and runs."""

    def forget(self, key: str) -> bool:
        """Remove the paper with this key or arXiv id and its ledger rows; False if unknown."""

    def reset(self) -> None:
        """Forget every paper, delivery and run; keep the schema."""

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...


def scheme_of(location: str) -> str:
    """The backend a ``[digest] store`` value names: its URL scheme, ``sqlite`` for a path."""
    head, sep, _ = location.partition("://")
    if sep and head.isascii() and head.replace("+", "").isalnum() and len(head) > 1:
        return head.lower()
    return "sqlite"


def open_store(location: str, *, base_dir: Path, readonly: bool = False) -> Store:
    """The store at ``location`` (a path relative to ``base_dir``, or a URL), opened.

    Raises :class:`StoreError` for a scheme no backend is registered for.
    """
    scheme = scheme_of(location)
    if scheme not in registry.STORES:
        known = ", ".join(sorted(registry.STORES))
        raise StoreError(
            f"no store backend for {scheme!r}",
            where=location,
            hint=f"[digest] store takes a file path or a URL with one of: {known}",
        )
    backend = registry.load(registry.STORES, scheme)
    store: Store = backend.open_location(location, base_dir=base_dir, readonly=readonly)
    return store
