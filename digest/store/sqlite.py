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
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from digest.errors import StoreError
from digest.identity import Resolver
from digest.identity import arxiv_id as parse_arxiv_id
from digest.models import Paper
from digest.store import (
    Accepted,
    Observed,
    OpenDigest,
    PlannedDigest,
    PruneReport,
    Refused,
    SeenPaper,
    StoreStats,
    SubscriberState,
    address_of,
    ledger,
    sqlite_file,
)
from digest.store.lock import RunLock
from digest.store.papers import (
    PRUNED,
    PaperTable,
    forget_paper,
    load_paper,
    prune_records,
    recent_records,
    records_of,
    save_papers,
    seen_rows,
    title_of,
)
from digest.store.sqlite_file import Database
from digest.store.sqlite_migrations import MIGRATIONS

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = sqlite_file.SCHEMA_VERSION
_LOADED_MAX = 10_000  # parsed paper records kept per store
RUNS_KEPT = 1000  # rows of the runs table kept by prune
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
        try:
            path = Path(raw).expanduser()
        except RuntimeError as exc:  # "~nosuchuser/..."
            raise StoreError(f"{exc}", where=location, hint="use an absolute path") from exc
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
            resolver = Resolver(PaperTable(conn, self.location), stable_keys=True)
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
        rows = self._db.read("read recent papers", lambda conn: recent_records(conn, _iso(since)))
        return [self._paper(key, record) for key, record in rows]

    # --- the ledger (see digest.store.ledger) ----------------------------------------------------

    def owed_papers(self, emails: Collection[str]) -> dict[str, list[Paper]]:
        """Per address (as given), the papers of its open digests, of any age."""

        def read(conn: sqlite3.Connection) -> tuple[dict[str, list[str]], dict[str, str]]:
            keys = ledger.owed(conn)
            return keys, records_of(conn, (k for ks in keys.values() for k in ks))

        keys, records = self._db.read("read what is owed", read, several=True)
        owed: dict[str, list[Paper]] = {}
        for email in emails:
            found = keys.get(address_of(email)) if keys else None
            owed[email] = (
                [
                    self._paper(key, records[key])
                    for key in dict.fromkeys(found)
                    if key in records and records[key] != PRUNED
                ]
                if found
                else []
            )
        return owed

    def delivered_keys(
        self, emails: Collection[str], since: dt.datetime
    ) -> dict[str, frozenset[str]]:
        """Per address (as given), the keys its digests sent since ``since`` listed or passed
        over: what must not be offered again among papers first seen since then."""
        sent = self._db.read("read deliveries", lambda conn: ledger.delivered(conn, _iso(since)))
        nothing: frozenset[str] = frozenset()
        if not sent:
            return dict.fromkeys(emails, nothing)
        return {email: sent.get(address_of(email), nothing) for email in emails}

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

    def plan_digests(
        self, run_id: int, day: dt.date, planned: Sequence[PlannedDigest], now: dt.datetime
    ) -> list[OpenDigest]:
        """Record ``planned`` as pending, re-using each subscriber's open digest, in one go."""
        stamp = _iso(now)
        return self._db.write(
            "record the plan",
            lambda conn: ledger.plan_digests(conn, run_id, day.isoformat(), planned, stamp),
        )

    def mark_sent(self, run_id: int, accepted: Sequence[Accepted], now: dt.datetime) -> int:
        """Record digests the channel accepted, in one durable (fsynced) transaction."""
        if not accepted:
            return 0
        stamp = _iso(now)
        return self._db.write(
            "record deliveries",
            lambda conn: ledger.record_sent(conn, run_id, accepted, stamp),
            durable=True,
        )

    def mark_failed(
        self,
        run_id: int,
        refused: Sequence[Refused],
        now: dt.datetime,
        *,
        suspend_after: int | None = None,
    ) -> list[str]:
        """Record digests the channel refused (their papers stay owed), suspending addresses
        that bounced ``suspend_after`` runs in a row; the addresses suspended now."""
        if not refused:
            return []
        stamp = _iso(now)
        return self._db.write(
            "record failed deliveries",
            lambda conn: ledger.record_failed(conn, run_id, refused, stamp, suspend_after),
        )

    def subscriber_states(
        self, emails: Collection[str] | None = None
    ) -> dict[str, SubscriberState]:
        """What the store knows of each subscriber, by address."""
        return self._db.read(
            "read subscribers", lambda conn: ledger.subscriber_states(conn, emails)
        )

    def set_subscriber_status(
        self, email: str, status: str, how: str, now: dt.datetime, *, error: str | None = None
    ) -> None:
        """Unsubscribe, suspend or reactivate a subscriber."""
        stamp = _iso(now)
        self._db.write(
            "record the subscriber's status",
            lambda conn: ledger.set_status(conn, email, status, how, stamp, error=error),
        )

    def prune(self, now: dt.datetime, keep: dt.timedelta) -> PruneReport:
        """Drop digests sent, and records of papers first seen, more than ``keep`` ago."""
        before = _iso(now - keep)

        def prune(conn: sqlite3.Connection) -> PruneReport:
            owed = {key for keys in ledger.owed(conn).values() for key in keys}
            digests = ledger.prune_digests(conn, before)
            records = prune_records(conn, before, owed)
            conn.execute(
                "DELETE FROM runs WHERE id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?) "
                "AND id NOT IN (SELECT run_id FROM digests WHERE run_id IS NOT NULL)",
                (RUNS_KEPT,),
            )
            return PruneReport(digests=digests, records=records)

        report = self._db.write("prune the store", prune)
        if report.digests or report.records:
            self._db.reclaim()
        return report

    # --- inspection and editing (``digest seen``) ------------------------------------------------

    def list_seen(self, limit: int | None = None) -> list[SeenPaper]:
        """The papers seen, newest first, with how many subscribers received each."""
        rows = self._db.read("list the papers seen", lambda conn: seen_rows(conn, limit))
        return [
            SeenPaper(str(key), arxiv, title_of(str(record)), _time(str(first)), int(sent))
            for key, arxiv, record, first, sent in rows
        ]

    def stats(self) -> StoreStats:
        """Counts of papers, digests and papers delivered, subscribers and runs."""

        def count(conn: sqlite3.Connection) -> tuple[Any, ...]:
            papers, first, last = conn.execute(
                "SELECT COUNT(*), MIN(first_seen), MAX(last_seen) FROM papers"
            ).fetchone()
            runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            return papers, first, last, ledger.ledger_counts(conn), runs, version

        papers, first, last, counts, runs, version = self._db.read(
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
            sent=counts["sent"],
            pending=counts["pending"],
            failed=counts["failed"],
            digests=counts["digests"],
            subscribers=counts["subscribers"],
            runs=runs,
        )

    def forget(self, key: str) -> bool:
        """Remove the paper with this key or arXiv id (any version) and its place in digests.

        A forgotten paper is new again the next time a source carries it, and goes out again to
        the subscribers it matches. Returns False when no such paper is stored.
        """
        arxiv = parse_arxiv_id(key)

        def forget(conn: sqlite3.Connection) -> bool:
            keys = forget_paper(conn, key.strip(), arxiv)
            for found in keys:
                ledger.forget_key(conn, found)
            return bool(keys)

        return self._db.write("forget the paper", forget)

    def reset(self) -> None:
        """Forget every paper, digest, subscriber state and run; keep the schema."""

        def wipe(conn: sqlite3.Connection) -> None:
            for table in ("digests", "subscribers", "paper_titles", "papers", "runs"):
                conn.execute(f"DELETE FROM {table}")  # table names are constants

        self._db.write("reset the store", wipe)

    # --- plumbing --------------------------------------------------------------------------------

    def _paper(self, key: str, record: str) -> Paper:
        # Thousands of subscribers are owed the same few papers: validate each record once.
        cached = self._loaded.get(key)
        if cached is not None and cached[0] == record:
            return cached[1]
        if len(self._loaded) >= _LOADED_MAX:
            self._loaded.clear()
        paper = load_paper(self.location, key, record)
        self._loaded[key] = (record, paper)
        return paper


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no timezone; the store takes timezone-aware times")
    # One fixed width and zone, so text order is time order in SQL.
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
