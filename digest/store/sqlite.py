"""The default store: one SQLite file (WAL) beside its run lock, for one sending host.

The file, its schema and its transactions are :mod:`digest.store.sqlite_file`'s; this module is
what the store means. A ``sent`` mark is a durable (fsynced) commit: losing one would mean
sending that digest twice, while losing anything else only means redoing work (papers are seen
again, a ``pending`` mark is rewritten before its send).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from digest.errors import StoreError
from digest.identity import Resolver
from digest.identity import arxiv_id as parse_arxiv_id
from digest.models import Paper
from digest.store import Observed, SeenPaper, StoreStats, sqlite_file
from digest.store.lock import RunLock
from digest.store.sqlite_file import Database
from digest.store.sqlite_migrations import MIGRATIONS
from digest.store.sqlite_papers import PaperTable, load_paper, save_papers

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = sqlite_file.SCHEMA_VERSION
_LOADED_MAX = 10_000  # parsed paper records kept per store
_T = TypeVar("_T")


class SqliteStore:
    """One paper-digest store file. Use :meth:`open`; not for concurrent use by several threads."""

    def __init__(self, database: Database) -> None:
        self.path = database.path
        self.location = str(database.path)
        self.readonly = database.readonly
        self._db = database
        self._lock = RunLock(database.path)
        self._loaded: dict[str, tuple[str, Paper]] = {}

    @classmethod
    def open_location(cls, location: str, *, base_dir: Path, readonly: bool) -> SqliteStore:
        """The store a ``[digest] store`` value names: a path, or ``sqlite:///path``."""
        raw = location.removeprefix("sqlite://") if location.startswith("sqlite://") else location
        path = Path(raw).expanduser()
        return cls.open(path if path.is_absolute() else base_dir / path, readonly=readonly)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> SqliteStore:
        """Open the store file at ``path`` (see :meth:`Database.open`)."""
        return cls(Database.open(Path(path), readonly=readonly))

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the run lock ----------------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The side file the run lock locks."""
        return self._lock.path

    @property
    def stale_lock(self) -> str | None:
        """Who held the lock :meth:`run_lock` took over from a run that died, if it did."""
        return self._lock.stale

    @contextlib.contextmanager
    def run_lock(self, *, now: dt.datetime | None = None) -> Iterator[None]:
        """Hold the run lock (see :mod:`digest.store.lock`); a read-only store takes none: it
        never sends nor writes, so it cannot double-send."""
        if self.readonly:
            yield
            return
        with self._lock.hold(now=now):
            yield

    # --- seen papers -----------------------------------------------------------------------------

    def observe(
        self, papers: Sequence[Paper], now: dt.datetime, *, record: bool = True
    ) -> Observed:
        """Split ``papers`` into new and known ones; with ``record``, remember them all.

        Recording inserts the new papers (first seen ``now``) and updates the known ones with the
        merged record (an arXiv id learnt later is filled in), in one transaction.
        """
        stamp = _iso(now)

        def classify(conn: sqlite3.Connection) -> Resolver:
            resolver = Resolver(PaperTable(conn, self.path), stable_keys=True)
            for paper in papers:
                resolver.add(paper)
            if record:
                save_papers(conn, resolver, stamp)
            return resolver

        if record:
            resolved = self._db.write("record the papers seen", classify)
        else:
            resolved = self._db.read("look up papers", classify, several=True)
        entries = resolved.entries()
        return Observed(
            new=[e.paper for e in entries if e.new], known=[e.paper for e in entries if not e.new]
        )

    def recent_papers(self, since: dt.datetime) -> list[Paper]:
        """The latest record of every paper first seen at or after ``since``, newest first."""
        rows = self._db.read(
            "read recent papers",
            lambda conn: conn.execute(
                "SELECT key, record FROM papers WHERE first_seen >= ? "
                "ORDER BY first_seen DESC, key",
                (_iso(since),),
            ).fetchall(),
        )
        return [self._paper(key, record) for key, record in rows]

    # --- the deliveries ledger -------------------------------------------------------------------

    def owed_papers(self, emails: Collection[str]) -> dict[str, list[Paper]]:
        """Per address (as given), papers marked pending or failed and never sent, of any age."""
        wanted = _by_address(emails)
        rows = self._db.read(
            "read pending deliveries",
            lambda conn: conn.execute(
                "SELECT d.email, p.key, p.record FROM deliveries AS d INDEXED BY deliveries_open "
                "JOIN papers AS p ON p.key = d.paper_key WHERE d.status != 'sent' "
                "ORDER BY p.first_seen DESC, p.key"
            ).fetchall(),
        )
        owed: dict[str, list[Paper]] = {email: [] for email in emails}
        for address, key, record in rows:
            for email in wanted.get(address, ()):
                owed[email].append(self._paper(key, record))
        return owed

    def delivered_keys(self, emails: Collection[str], keys: Collection[str]) -> dict[str, set[str]]:
        """Per address (as given), which of ``keys`` it must not be offered again: accepted by
        the transport, or passed over by a sent digest because of its ``max_papers``."""
        wanted = _by_address(emails)
        listed = json.dumps(sorted(set(keys)))
        rows = self._db.read(
            "read deliveries",
            lambda conn: conn.execute(
                "SELECT email, paper_key FROM deliveries "
                "WHERE paper_key IN (SELECT value FROM json_each(?)) AND status = 'sent' "
                "UNION ALL SELECT email, paper_key FROM passed_over "
                "WHERE paper_key IN (SELECT value FROM json_each(?))",
                (listed, listed),
            ).fetchall(),
        )
        delivered: dict[str, set[str]] = {email: set() for email in emails}
        for address, key in rows:
            for email in wanted.get(address, ()):
                delivered[email].add(key)
        return delivered

    def begin_run(self, now: dt.datetime, *, dry_run: bool = False) -> int:
        """Record the start of a run and return its id (0, recording nothing, for a dry run on a
        read-only store)."""
        if self.readonly and dry_run:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO runs (started, dry_run, pid) VALUES (?, ?, ?)",
                (_iso(now), int(dry_run), os.getpid()),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return self._db.write("record the run", insert)

    def finish_run(self, run_id: int, now: dt.datetime, summary: str) -> None:
        """Record the end of run ``run_id`` and its summary."""
        if self.readonly and run_id == 0:
            return

        def update(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE runs SET finished = ?, summary = ? WHERE id = ?",
                (_iso(now), summary, run_id),
            )
            if cursor.rowcount != 1:
                raise StoreError(
                    f"there is no run {run_id} to finish",
                    where=str(self.path),
                    hint="finish_run takes the id begin_run returned",
                )

        self._db.write("record the end of the run", update)

    def mark_pending(self, run_id: int, email: str, keys: Sequence[str], now: dt.datetime) -> None:
        """Record that ``keys`` are about to be sent to ``email`` (a sent row stays sent)."""
        self._ledger(
            "INSERT INTO deliveries (email, paper_key, status, run_id, updated) "
            "VALUES (?, ?, 'pending', ?, ?) "
            "ON CONFLICT (email, paper_key) DO UPDATE SET "
            "status = 'pending', run_id = excluded.run_id, updated = excluded.updated "
            "WHERE deliveries.status != 'sent'",
            [(_address(email), key, run_id, _iso(now)) for key in keys],
        )

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
        """Record that the transport accepted ``message_id`` carrying ``keys`` for ``email``.

        ``passed_over``: papers that matched but fell below the subscriber's ``max_papers`` cut;
        recorded in the same transaction so they are not offered again.
        """
        address, stamp = _address(email), _iso(now)

        def record(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO deliveries "
                "(email, paper_key, status, run_id, message_id, updated, attempts) "
                "VALUES (?, ?, 'sent', ?, ?, ?, 1) "
                "ON CONFLICT (email, paper_key) DO UPDATE SET "
                "status = 'sent', run_id = excluded.run_id, message_id = excluded.message_id, "
                "reason = NULL, updated = excluded.updated, attempts = deliveries.attempts + 1 "
                "WHERE deliveries.status != 'sent'",
                [(address, key, run_id, message_id, stamp) for key in keys],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO passed_over (email, paper_key, run_id, updated) "
                "VALUES (?, ?, ?, ?)",
                [(address, key, run_id, stamp) for key in passed_over if key not in keys],
            )

        self._db.write("record deliveries", record, durable=True)

    def mark_failed(
        self, run_id: int, email: str, keys: Sequence[str], reason: str, now: dt.datetime
    ) -> None:
        """Record that sending ``keys`` to ``email`` failed; they stay owed."""
        self._ledger(
            "INSERT INTO deliveries "
            "(email, paper_key, status, run_id, reason, updated, attempts) "
            "VALUES (?, ?, 'failed', ?, ?, ?, 1) "
            "ON CONFLICT (email, paper_key) DO UPDATE SET "
            "status = 'failed', run_id = excluded.run_id, reason = excluded.reason, "
            "updated = excluded.updated, attempts = deliveries.attempts + 1 "
            "WHERE deliveries.status != 'sent'",
            [(_address(email), key, run_id, reason, _iso(now)) for key in keys],
        )

    # --- inspection and editing (``digest seen``) ------------------------------------------------

    def list_seen(self, limit: int | None = None) -> list[SeenPaper]:
        """The papers seen, newest first, with how many subscribers received each."""
        rows = self._db.read(
            "list the papers seen",
            lambda conn: conn.execute(
                "SELECT p.key, p.arxiv_id, json_extract(p.record, '$.title'), p.first_seen, "
                "(SELECT COUNT(*) FROM deliveries AS d "
                " WHERE d.paper_key = p.key AND d.status = 'sent') "
                "FROM papers AS p ORDER BY p.first_seen DESC, p.key LIMIT ?",
                (-1 if limit is None else max(limit, 0),),
            ).fetchall(),
        )
        return [
            SeenPaper(key, arxiv, str(title), _time(first), sent)
            for key, arxiv, title, first, sent in rows
        ]

    def stats(self) -> StoreStats:
        """Counts of papers, deliveries by status, subscribers and runs."""

        def count(conn: sqlite3.Connection) -> tuple[Any, ...]:
            papers, first, last = conn.execute(
                "SELECT COUNT(*), MIN(first_seen), MAX(last_seen) FROM papers"
            ).fetchone()
            by_status = dict(
                conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall()
            )
            subscribers = conn.execute("SELECT COUNT(DISTINCT email) FROM deliveries").fetchone()
            runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
            version = conn.execute("PRAGMA user_version").fetchone()
            return papers, first, last, by_status, subscribers[0], runs[0], version[0]

        papers, first, last, by_status, subscribers, runs, version = self._db.read(
            "count the store", count, several=True
        )
        size = 0
        for part in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                size += part.stat().st_size
        return StoreStats(
            location=str(self.path),
            schema_version=version,
            size=size,
            papers=papers,
            first_seen=_time(first) if first else None,
            last_seen=_time(last) if last else None,
            sent=by_status.get("sent", 0),
            pending=by_status.get("pending", 0),
            failed=by_status.get("failed", 0),
            subscribers=subscribers,
            runs=runs,
        )

    def forget(self, key: str) -> bool:
        """Remove the paper with this key or arXiv id (any version), and its ledger rows.

        A forgotten paper is new again the next time a source carries it, and goes out again to
        the subscribers it matches. Returns False when no such paper is stored.
        """
        arxiv = parse_arxiv_id(key)
        cursor = self._db.write(
            "forget the paper",
            lambda conn: conn.execute(
                "DELETE FROM papers WHERE key = ? OR arxiv_id = ?", (key.strip(), arxiv)
            ),
        )
        return cursor.rowcount > 0

    def reset(self) -> None:
        """Forget every paper, delivery and run; keep the schema."""

        def wipe(conn: sqlite3.Connection) -> None:
            for table in ("deliveries", "passed_over", "paper_titles", "papers", "runs"):
                conn.execute(f"DELETE FROM {table}")  # table names are constants

        self._db.write("reset the store", wipe)

    # --- plumbing --------------------------------------------------------------------------------

    def _ledger(self, sql: str, rows: list[tuple[Any, ...]], *, durable: bool = False) -> None:
        self._db.write(
            "record deliveries", lambda conn: conn.executemany(sql, rows), durable=durable
        )

    def _paper(self, key: str, record: str) -> Paper:
        # Thousands of subscribers are owed the same few papers: validate each record once.
        cached = self._loaded.get(key)
        if cached is not None and cached[0] == record:
            return cached[1]
        if len(self._loaded) >= _LOADED_MAX:
            self._loaded.clear()
        paper = load_paper(self.path, key, record)
        self._loaded[key] = (record, paper)
        return paper


def _address(email: str) -> str:
    # One subscriber written Ada@Example.org in one config and ada@example.org in the next is
    # still one subscriber: never send them a paper twice over a change of case.
    return email.strip().lower()


def _by_address(emails: Collection[str]) -> dict[str, list[str]]:
    wanted: dict[str, list[str]] = {}
    for email in emails:
        wanted.setdefault(_address(email), []).append(email)
    return wanted


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no timezone; the store takes timezone-aware times")
    # One fixed width and zone, so text order is time order in SQL.
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
