"""The SQLite store: papers already seen, the per-subscriber deliveries ledger, and the run lock.

Guarantees (DESIGN.md promises 1-4):

- A paper is *known* when the store has it by versionless arXiv id or by normalised title
  (:func:`digest.keys.title_key`, every title it was ever seen under); two different arXiv ids are
  two papers even under one title. Known papers come back under the key they were first stored
  with, so the ledger never holds one paper under two keys.
- The ledger holds one row per (subscriber, paper): ``pending`` before a send, ``sent`` only once
  the transport accepted the message, ``failed`` when it refused. A ``sent`` row is never turned
  back, and anything not ``sent`` is offered again by :meth:`Store.pending_papers`, whatever its
  age.
- Every public call that writes is one ``BEGIN IMMEDIATE`` transaction: nothing is half-written.
- ``Store.open(path, readonly=True)`` never creates, writes or migrates anything, nor leaves a
  ``-wal``/``-shm`` file that was not there (see :meth:`Store.open`).
- :meth:`Store.run_lock` is an ``flock`` on ``<db>.lock``; the kernel drops it when its process
  dies, however it dies, so a killed run never blocks the next one.

Durability: WAL with ``synchronous=NORMAL``, except that :meth:`Store.mark_sent` commits with
``synchronous=FULL`` (one fsync of the WAL). A process crash loses no commit either way; a power
loss or OS crash may undo the last ``NORMAL`` commits, but the WAL is sequential, so each fsync of
a ``sent`` mark also makes everything before it durable. Losing a ``sent`` mark would mean sending
that digest twice; losing anything else only means redoing work (papers are seen again, a
``pending`` mark is rewritten before its send). The fsync costs a few ms per message, small next to
an SMTP round trip.

Schema changes are the ordered :data:`MIGRATIONS`; ``PRAGMA user_version`` counts those applied and
``PRAGMA application_id`` marks the file as ours, so another program's database is never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import pydantic

from digest.dedupe import merge_two
from digest.errors import LockedError, StoreError
from digest.keys import arxiv_id as parse_arxiv_id
from digest.models import Paper

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Observed",
    "SeenPaper",
    "Store",
    "StoreStats",
]

APPLICATION_ID = 0x50444753  # "PDGS": marks the file as a paper-digest store
BUSY_TIMEOUT_S = 10.0
_LOADED_MAX = 10_000  # parsed paper records kept per Store
_PAPER_FIELDS = frozenset(Paper.model_fields)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: seen papers, runs, and the deliveries ledger.
    (
        """CREATE TABLE papers (
            key TEXT PRIMARY KEY,
            arxiv_id TEXT UNIQUE,
            title_key TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX papers_title ON papers (title_key)",
        "CREATE INDEX papers_first_seen ON papers (first_seen)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL,
            finished TEXT,
            dry_run INTEGER NOT NULL DEFAULT 0,
            pid INTEGER,
            summary TEXT
        )""",
        """CREATE TABLE deliveries (
            email TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
            message_id TEXT,
            reason TEXT,
            updated TEXT NOT NULL,
            PRIMARY KEY (email, paper_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX deliveries_paper ON deliveries (paper_key, status)",
        f"PRAGMA application_id = {APPLICATION_ID}",
    ),
    # 2: remember every title a paper was seen under (a corrected title must still match the
    # saved text page that carried the old one); count delivery attempts; index the open rows so
    # pending_papers does not walk a subscriber's whole history.
    (
        """CREATE TABLE paper_titles (
            title_key TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
            PRIMARY KEY (title_key, paper_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX paper_titles_paper ON paper_titles (paper_key)",
        "INSERT INTO paper_titles (title_key, paper_key) SELECT title_key, key FROM papers",
        "ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "UPDATE deliveries SET attempts = 1 WHERE status != 'pending'",
        "CREATE INDEX deliveries_open ON deliveries (email) WHERE status != 'sent'",
    ),
    # 3: papers a subscriber matched but that fell below their max_papers cut in a digest that
    # was sent: offered once, so they do not come back in tomorrow's email.
    (
        """CREATE TABLE passed_over (
            email TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers (key) ON DELETE CASCADE,
            run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
            updated TEXT NOT NULL,
            PRIMARY KEY (email, paper_key)
        ) WITHOUT ROWID""",
        "CREATE INDEX passed_over_paper ON passed_over (paper_key)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_T = TypeVar("_T")


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

    path: str
    schema_version: int
    file_size: int  # the database file and its -wal
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
            ("store", self.path),
            ("schema version", str(self.schema_version)),
            ("file size (bytes)", str(self.file_size)),
            ("papers seen", str(self.papers)),
            ("first seen", self.first_seen.isoformat() if self.first_seen else "-"),
            ("last seen", self.last_seen.isoformat() if self.last_seen else "-"),
            ("deliveries sent", str(self.sent)),
            ("deliveries pending", str(self.pending)),
            ("deliveries failed", str(self.failed)),
            ("subscribers", str(self.subscribers)),
            ("runs", str(self.runs)),
        ]


class _Fingerprint(NamedTuple):
    inode: int
    size: int
    mtime_ns: int
    wal: bool


class Store:
    """One paper-digest store file. Use :meth:`open`; not for concurrent use by several threads."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        readonly: bool,
        snapshot: _Fingerprint | None = None,
    ) -> None:
        self.path = path
        self.readonly = readonly
        self.stale_lock: str | None = None
        """Set by :meth:`run_lock` when it took over the lock of a run that died holding it."""
        self._conn = conn
        self._snapshot = snapshot
        self._loaded: dict[str, tuple[str, Paper]] = {}

    # --- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> Store:
        """Open (read-write: create and upgrade) the store at ``path``.

        Read-write: creates missing parent directories and the file, switches to WAL, turns on
        foreign keys and a busy timeout, and applies the pending :data:`MIGRATIONS`, one
        transaction each.

        ``readonly=True`` never changes anything on disk: a missing file reads as an empty store;
        an older schema is copied into memory and upgraded there (reads then cost a copy of the
        file in memory, until the next read-write open upgrades the file); a fully checkpointed
        file (no ``-wal``) is read with SQLite's ``immutable`` flag, which creates no side files,
        and every read checks afterwards that no writer touched the file meanwhile (if one did,
        the read is redone through a plain read-only connection, which may leave an empty
        ``-wal``/``-shm`` behind while that writer is active).

        Raises :class:`StoreError` naming the file when it is not a paper-digest store, was made
        by a newer version, or cannot be created or written.
        """
        path = Path(path)
        if path.is_dir():
            raise StoreError(
                "is a directory, not a store file",
                where=str(path),
                hint="set [digest] store to a file name, e.g. digest.db",
            )
        if readonly:
            return cls._open_readonly(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store's directory {path.parent}: {exc.strerror or exc}",
                where=str(path),
                hint="set [digest] store to a path in a writable directory",
            ) from exc
        try:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _store_error(path, "open the store", exc) from exc
        try:
            version = _identify(conn, path)
            _check_writable(path)
            conn.execute("PRAGMA foreign_keys = ON")
            # The journal mode is stored in the file, so only switch our own (identified) stores.
            mode = _switch_to_wal(conn)
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"cannot switch the store to WAL mode (it stays in {mode!r})",
                    where=str(path),
                    hint="keep the store on a local disk; network filesystems cannot do WAL",
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, version)
        except sqlite3.Error as exc:
            conn.close()
            raise _store_error(path, "open the store", exc) from exc
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, readonly=False)

    @classmethod
    def _open_readonly(cls, path: Path) -> Store:
        if not path.exists():
            memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _migrate(memory, 0)
            return cls(path, memory, readonly=True)
        for _attempt in range(3):
            before = _fingerprint(path)
            conn = _connect_readonly(path, immutable=not before.wal)
            try:
                version = _identify(conn, path)
                if version < SCHEMA_VERSION:
                    memory = sqlite3.connect(
                        ":memory:", isolation_level=None, check_same_thread=False
                    )
                    conn.backup(memory)
                    conn.close()
                    if before.wal or _fingerprint(path) == before:
                        memory.execute("PRAGMA foreign_keys = ON")
                        _migrate(memory, version)
                        return cls(path, memory, readonly=True)
                    memory.close()
                    continue
                conn.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                conn.close()
                raise _store_error(path, "read the store", exc) from exc
            except BaseException:
                conn.close()
                raise
            return cls(path, conn, readonly=True, snapshot=None if before.wal else before)
        raise StoreError(
            "the store kept changing while it was being read",
            where=str(path),
            hint="wait for the running `digest run` to finish, then try again",
        )

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the run lock ----------------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The side file :meth:`run_lock` locks."""
        return self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def run_lock(self, *, now: dt.datetime | None = None) -> Iterator[None]:
        """Hold the run lock for the ``with`` block, or raise :class:`LockedError` at once.

        ``now`` only labels the lock for the message another run shows (default: the clock). A
        read-only store takes no lock: it never sends nor writes, so it cannot double-send.
        """
        if self.readonly:
            yield
            return
        lock_path = self.lock_path
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot create the run lock {lock_path}: {exc.strerror or exc}",
                where=str(self.path),
                hint="make the store's directory writable",
            ) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(
                    f"another digest run is in progress ({_holder(fd) or 'pid unknown'})",
                    where=str(self.path),
                    hint="wait for it to finish and try again; the lock "
                    f"({lock_path.name}) goes away by itself when that process exits",
                ) from None
            except OSError as exc:
                raise StoreError(
                    f"cannot lock {lock_path}: {exc.strerror or exc}",
                    where=str(self.path),
                    hint="keep the store on a local disk (file locks may not work over NFS)",
                ) from exc
            # A clean release empties the file, so content now means its holder died with it.
            self.stale_lock = _holder(fd)
            since = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(" ", "seconds")
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": since}).encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # --- seen papers -----------------------------------------------------------------------------

    def observe(
        self, papers: Sequence[Paper], now: dt.datetime, *, record: bool = True
    ) -> Observed:
        """Split ``papers`` into new and known ones; with ``record``, remember them all.

        Recording inserts the new papers (first seen ``now``) and updates the known ones with the
        merged record (an arXiv id learnt later is filled in), in one transaction.
        """
        stamp = _iso(now)

        def classify(conn: sqlite3.Connection) -> _Classifier:
            found = _Classifier(conn, self.path)
            for paper in papers:
                found.add(paper)
            if record:
                found.save(conn, stamp)
            return found

        if record:
            result = self._write("record the papers seen", classify)
        else:
            result = self._read("look up papers", classify, several=True)
        return Observed(new=result.papers(new=True), known=result.papers(new=False))

    def recent_papers(self, since: dt.datetime) -> list[Paper]:
        """The latest record of every paper first seen at or after ``since``, newest first."""
        stamp = _iso(since)
        rows = self._read(
            "read recent papers",
            lambda conn: conn.execute(
                "SELECT key, record FROM papers WHERE first_seen >= ? "
                "ORDER BY first_seen DESC, key",
                (stamp,),
            ).fetchall(),
        )
        return [self._paper(key, record) for key, record in rows]

    # --- the deliveries ledger -------------------------------------------------------------------

    def pending_papers(self, email: str) -> list[Paper]:
        """Papers owed to ``email``: marked pending or failed and never sent, of any age."""
        address = _address(email)
        rows = self._read(
            "read pending deliveries",
            lambda conn: conn.execute(
                "SELECT p.key, p.record FROM deliveries AS d "
                "JOIN papers AS p ON p.key = d.paper_key "
                "WHERE d.email = ? AND d.status != 'sent' "
                "ORDER BY p.first_seen DESC, p.key",
                (address,),
            ).fetchall(),
        )
        return [self._paper(key, record) for key, record in rows]

    def delivered_keys(self, email: str) -> set[str]:
        """Keys not to offer ``email`` again: accepted by the transport, or passed over by a sent
        digest because of the subscriber's ``max_papers``."""
        address = _address(email)
        rows = self._read(
            "read deliveries",
            lambda conn: conn.execute(
                "SELECT paper_key FROM deliveries WHERE email = ? AND status = 'sent' "
                "UNION SELECT paper_key FROM passed_over WHERE email = ?",
                (address, address),
            ).fetchall(),
        )
        return {key for (key,) in rows}

    def begin_run(self, now: dt.datetime, *, dry_run: bool = False) -> int:
        """Record the start of a run and return its id (0, recording nothing, for a dry run on a
        read-only store)."""
        stamp = _iso(now)
        if self.readonly and dry_run:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "INSERT INTO runs (started, dry_run, pid) VALUES (?, ?, ?)",
                (stamp, int(dry_run), os.getpid()),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return self._write("record the run", insert)

    def finish_run(self, run_id: int, now: dt.datetime, summary: str) -> None:
        """Record the end of run ``run_id`` and its summary."""
        stamp = _iso(now)
        if self.readonly and run_id == 0:
            return

        def update(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE runs SET finished = ?, summary = ? WHERE id = ?", (stamp, summary, run_id)
            )
            if cursor.rowcount != 1:
                raise StoreError(
                    f"there is no run {run_id} to finish",
                    where=str(self.path),
                    hint="finish_run takes the id begin_run returned",
                )

        self._write("record the end of the run", update)

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

        self._write("record deliveries", record, durable=True)

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
        rows = self._read(
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

        papers, first, last, by_status, subscribers, runs, version = self._read(
            "count the store", count, several=True
        )
        size = 0
        for part in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                size += part.stat().st_size
        return StoreStats(
            path=str(self.path),
            schema_version=version,
            file_size=size,
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
        cursor = self._write(
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

        self._write("reset the store", wipe)

    # --- plumbing --------------------------------------------------------------------------------

    def _ledger(self, sql: str, rows: list[tuple[Any, ...]], *, durable: bool = False) -> None:
        self._write("record deliveries", lambda conn: conn.executemany(sql, rows), durable=durable)

    def _write(
        self, action: str, work: Callable[[sqlite3.Connection], _T], *, durable: bool = False
    ) -> _T:
        """Run ``work`` in one write transaction; ``durable`` fsyncs the commit (see module doc)."""
        if self.readonly:
            raise StoreError(
                f"cannot {action}: the store was opened read-only",
                where=str(self.path),
                hint="preview and --dry-run never change the store; this is a paper-digest bug",
            )
        conn = self._conn
        try:
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _store_error(self.path, action, exc) from exc
        finally:
            if durable:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA synchronous = NORMAL")
        return result

    def _read(
        self, action: str, work: Callable[[sqlite3.Connection], _T], *, several: bool = False
    ) -> _T:
        """Run ``work``; ``several`` statements share one read transaction, so one snapshot."""
        run = self._in_snapshot if several else (lambda work: work(self._conn))
        try:
            result = run(work)
            if self._snapshot is not None and _fingerprint(self.path) != self._snapshot:
                # A writer came along while we read an immutable view: read it properly.
                self._conn.close()
                self._conn = _connect_readonly(self.path, immutable=False)
                self._conn.execute("PRAGMA query_only = ON")
                self._snapshot = None
                result = run(work)
        except sqlite3.Error as exc:
            raise _store_error(self.path, action, exc) from exc
        return result

    def _in_snapshot(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            return work(conn)
        finally:
            _rollback(conn)

    def _paper(self, key: str, record: str) -> Paper:
        # Thousands of subscribers are owed the same few papers: validate each record once.
        cached = self._loaded.get(key)
        if cached is not None and cached[0] == record:
            return cached[1]
        if len(self._loaded) >= _LOADED_MAX:
            self._loaded.clear()
        paper = _load_paper(self.path, key, record)
        self._loaded[key] = (record, paper)
        return paper


# --- classifying papers against the store ----------------------------------------------------


@dataclass
class _Entry:
    paper: Paper
    new: bool
    titles: set[str] = field(default_factory=set)


class _Classifier:
    """The papers of one observe() call, each resolved to its canonical key.

    Papers met earlier in the same call are matched in memory, so duplicates within one input
    merge into one entry whether or not anything is written.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._entries: dict[str, _Entry] = {}
        self._by_arxiv: dict[str, str] = {}
        self._by_title: dict[str, list[str]] = {}

    def add(self, paper: Paper) -> None:
        key = self._find(paper)
        entry = self._entries.get(key) if key is not None else None
        if key is None:
            key = paper.key
            entry = _Entry(paper, new=True)
        elif entry is not None:
            entry.paper = merge_two(entry.paper, paper, keep_key=True)
        else:
            stored = self._conn.execute("SELECT record FROM papers WHERE key = ?", (key,))
            entry = _Entry(
                merge_two(_load_paper(self._path, key, stored.fetchone()[0]), paper, keep_key=True),
                new=False,
            )
        entry.paper = entry.paper.model_copy(update={"key": key})
        entry.titles.update((paper.title_key, entry.paper.title_key))
        self._entries[key] = entry
        if entry.paper.arxiv_id:
            self._by_arxiv.setdefault(entry.paper.arxiv_id, key)
        for title in entry.titles:
            keys = self._by_title.setdefault(title, [])
            if key not in keys:
                keys.append(key)

    def _find(self, paper: Paper) -> str | None:
        conn = self._conn
        if paper.key in self._entries:
            return paper.key
        if conn.execute("SELECT 1 FROM papers WHERE key = ?", (paper.key,)).fetchone():
            return paper.key
        if paper.arxiv_id:
            if paper.arxiv_id in self._by_arxiv:
                return self._by_arxiv[paper.arxiv_id]
            row = conn.execute("SELECT key FROM papers WHERE arxiv_id = ?", (paper.arxiv_id,))
            found = row.fetchone()
            if found:
                return str(found[0])
        stored = conn.execute(
            "SELECT p.key, p.arxiv_id FROM paper_titles AS t JOIN papers AS p "
            "ON p.key = t.paper_key WHERE t.title_key = ? ORDER BY p.first_seen, p.key",
            (paper.title_key,),
        ).fetchall()
        candidates = [(str(k), a) for k, a in stored]
        candidates += [(k, None) for k in self._by_title.get(paper.title_key, [])]
        for key, arxiv in candidates:
            if key in self._entries:
                arxiv = self._entries[key].paper.arxiv_id
            if not (paper.arxiv_id and arxiv and arxiv != paper.arxiv_id):
                return key
        return None

    def papers(self, *, new: bool) -> list[Paper]:
        return [e.paper for e in self._entries.values() if e.new is new]

    def save(self, conn: sqlite3.Connection, stamp: str) -> None:
        for key, entry in self._entries.items():
            paper = entry.paper
            if entry.new:
                conn.execute(
                    "INSERT INTO papers (key, arxiv_id, title_key, first_seen, last_seen, record) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, paper.arxiv_id, paper.title_key, stamp, stamp, paper.model_dump_json()),
                )
            else:
                conn.execute(
                    "UPDATE papers SET arxiv_id = COALESCE(arxiv_id, ?), title_key = ?, "
                    "last_seen = MAX(last_seen, ?), record = ? WHERE key = ?",
                    (paper.arxiv_id, paper.title_key, stamp, paper.model_dump_json(), key),
                )
            conn.executemany(
                "INSERT OR IGNORE INTO paper_titles (title_key, paper_key) VALUES (?, ?)",
                [(title, key) for title in sorted(entry.titles)],
            )


# --- helpers ---------------------------------------------------------------------------------


def _load_paper(path: Path, key: str, record: str) -> Paper:
    try:
        data = json.loads(record)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        # Fields a later version dropped from Paper must not make old records unreadable.
        data = {name: value for name, value in data.items() if name in _PAPER_FIELDS}
        data["key"] = key
        return Paper.model_validate(data)
    except (ValueError, pydantic.ValidationError) as exc:
        raise StoreError(
            f"the stored record of paper {key} cannot be read: {exc}",
            where=str(path),
            hint=f"remove it with `digest seen forget {key}`",
        ) from exc


def _identify(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of our store at ``conn`` (0: an empty file), or StoreError."""
    try:
        # One snapshot: a store being created by another process must not look half-made.
        conn.execute("BEGIN")
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        finally:
            _rollback(conn)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_NOTADB":
            raise  # unreadable, locked, ...: the caller says so
        raise StoreError(
            f"not a paper-digest store: {exc}",
            where=str(path),
            hint="point [digest] store at a new file (it is created), or move this file away",
        ) from exc
    if app == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store has schema version {version}; this paper-digest knows up to "
                f"{SCHEMA_VERSION}",
                where=str(path),
                hint="upgrade paper-digest (a newer version made this store)",
            )
        return int(version)
    if app == 0 and version == 0 and tables == 0:
        return 0
    raise StoreError(
        "not a paper-digest store (an SQLite database of another program)",
        where=str(path),
        hint="point [digest] store at a new file; this one is left untouched",
    )


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Ask for WAL mode, returning the journal mode the file is in afterwards."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            # When several processes open a brand-new file at once, SQLite can refuse the
            # switch at once instead of calling the busy handler: wait and ask again as it would.
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    for number in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied this step while we waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")  # an int we own, not input
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise


def _connect_readonly(path: Path, *, immutable: bool) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    if immutable:
        uri += "&immutable=1"
    try:
        return sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise _store_error(path, "open the store read-only", exc) from exc


def _fingerprint(path: Path) -> _Fingerprint:
    info = path.stat()
    wal = path.with_name(path.name + "-wal").exists()
    return _Fingerprint(info.st_ino, info.st_size, info.st_mtime_ns, wal)


def _check_writable(path: Path) -> None:
    # SQLite silently opens an unwritable file read-only; say so now, not at the first write.
    for target in (path, path.parent):
        if not os.access(target, os.W_OK):
            raise StoreError(
                f"the store is not writable ({target} is read-only for this user)",
                where=str(path),
                hint="fix the permissions (SQLite also writes -wal and -shm files next to it)",
            )


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _holder(fd: int) -> str | None:
    """``pid N since T`` from a lock file, or None when it is empty."""
    raw = os.pread(fd, 4096, 0)
    if not raw.strip():
        return None
    try:
        info = json.loads(raw)
        return f"pid {int(info['pid'])} since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "pid unknown"


def _store_error(path: Path, action: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        hint = (
            f"another process kept the store busy for over {BUSY_TIMEOUT_S:.0f} s; "
            "try again, and look for a stuck `digest` process"
        )
    elif "readonly" in lowered or "unable to open" in lowered or "permission" in lowered:
        hint = (
            "make sure the file and its directory are writable by this user "
            "(SQLite also writes -wal and -shm files next to it)"
        )
    elif "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        hint = "the file is damaged or not a paper-digest store: move it away or restore a backup"
    elif "full" in lowered or "disk i/o" in lowered:
        hint = "check the disk: it may be full or failing"
    elif "foreign key" in lowered:
        hint = "deliveries can only be recorded for papers observe() has stored"
    else:
        hint = "run `digest seen stats` to check the store"
    return StoreError(f"cannot {action}: {text}", where=str(path), hint=hint)


def _address(email: str) -> str:
    # One subscriber written Ada@Example.org in one config and ada@example.org in the next is
    # still one subscriber: never send them a paper twice over a change of case.
    return email.strip().lower()


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no timezone; the store takes timezone-aware times")
    # One fixed width and zone, so text order is time order in SQL.
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
