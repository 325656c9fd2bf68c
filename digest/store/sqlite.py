"""The default store: one SQLite file (WAL) beside its run lock, for one sending host.

The file, its schema and its transactions are :mod:`digest.store.sqlite_file`'s; the SQL of
the papers and the ledger is shared with every backend (:mod:`digest.store.papers`,
:mod:`digest.store.ledger`). A group of ``sent`` marks is one durable (fsynced) commit: losing
one would mean sending those digests twice, while losing anything else only means redoing work
(papers are seen again, a plan is made again).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from digest.errors import StoreError
from digest.store import Connection, OpenDigest, ledger
from digest.store.lock import RunLock
from digest.store.migrations import SCHEMA_VERSION
from digest.store.sql import SqlStore
from digest.store.sqlite_file import Database

__all__ = ["SCHEMA_VERSION", "SqliteStore"]


class SqliteStore(SqlStore):
    """One paper-digest store file. Use :meth:`open`; not for concurrent use by several threads."""

    latest_schema: ClassVar[int] = SCHEMA_VERSION

    def __init__(self, database: Database) -> None:
        super().__init__(database, str(database.path))
        self.path = database.path
        self._sqlite = database
        self._lock = RunLock(database.path)
        self._taken: set[int] = set()
        self._queue: list[OpenDigest] = []

    @classmethod
    def open_location(cls, location: str, *, base_dir: Path, readonly: bool) -> SqliteStore:
        """The store a ``[digest] store`` value names: a path, or ``sqlite:///path``."""
        raw = location.removeprefix("sqlite://") if location.startswith("sqlite://") else location
        try:
            path = Path(raw).expanduser()
        except RuntimeError as exc:  # "~nosuchuser/..."
            raise StoreError(f"{exc}", where=location, hint="use an absolute path") from exc
        return cls.open(path if path.is_absolute() else base_dir / path, readonly=readonly)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> SqliteStore:
        """Open the store file at ``path`` (see :meth:`Database.open`)."""
        return cls(Database.open(Path(path), readonly=readonly))

    def __enter__(self) -> SqliteStore:
        return self

    # --- the run lock ----------------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The side file the run lock locks."""
        return self._lock.path

    @property
    def stale_lock(self) -> str | None:
        """Who held the lock :meth:`run_lock` took over from a run that died, if it did."""
        return self._lock.stale

    @property
    def journal_path(self) -> Path:
        """The journal of accepted digests, beside the store's real file."""
        real = Path(os.path.realpath(self.path))
        return real.with_name(real.name + ".journal")

    @contextlib.contextmanager
    def run_lock(self, *, now: dt.datetime | None = None) -> Iterator[None]:
        """Hold the run lock (see :mod:`digest.store.lock`); a read-only store takes none: it
        never sends nor writes, so it cannot double-send."""
        if self.readonly:
            yield
            return
        with self._lock.hold(now=now):
            yield

    # --- claims: one sender, so they live in this process ---------------------------------------

    def claim_digests(
        self, worker: str, limit: int, now: dt.datetime, lease: dt.timedelta
    ) -> list[OpenDigest]:
        """Up to ``limit`` pending digests this process has not taken yet, oldest first.

        The run lock makes this process the only sender, so a claim needs no write: taking
        them is a read, which goes on while another process holds the file's write lock.
        """
        if not self._queue:
            pending = self._db.read("read the digests to send", ledger.pending_digests)
            self._queue = [d for d in pending if d.row not in self._taken]
        fresh, self._queue = self._queue[:limit], self._queue[limit:]
        self._taken.update(d.row for d in fresh)
        return fresh

    def renew_claims(self, worker: str, now: dt.datetime, lease: dt.timedelta) -> None:
        """Nothing to renew: no other sender can take them."""

    def release_claims(self, worker: str) -> None:
        """Forget what this process took (a later run takes what is still pending)."""
        self._taken.clear()
        self._queue = []

    def live_claimers(self, now: dt.datetime) -> list[str]:
        """None but this process: nobody else sends from this file."""
        return []

    def claimed_elsewhere(self, worker: str, now: dt.datetime) -> dt.datetime | None:
        """None: nobody else sends from this file."""
        return None

    # --- what only the file knows ----------------------------------------------------------------

    def _schema_version(self, conn: Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _size(self) -> int:
        size = 0
        for part in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                size += part.stat().st_size
        return size
