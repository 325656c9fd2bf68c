"""The SQLite store's file: its schema history, recognising our files, opening and transactions.

Schema changes are the SQLite steps of :mod:`.migrations`; ``PRAGMA user_version`` counts those
applied and ``PRAGMA application_id`` marks the file as ours, so another program's database is
never touched. Each migration is one transaction, re-checked under the write lock, so processes
opening a new file together apply each step once.

:meth:`Database.open` with ``readonly=True`` never changes anything on disk: a missing file reads
as an empty store; an older schema is copied into memory and upgraded there; a fully checkpointed
file (no ``-wal``) is read with SQLite's ``immutable`` flag, which creates no side files, and every
read checks afterwards that no writer touched the file meanwhile (if one did, the read is redone
through a plain read-only connection).

Durability: WAL with ``synchronous=NORMAL``; a ``durable`` write commits with ``synchronous=FULL``
(one fsync of the WAL). A process crash loses no commit either way; a power loss or OS crash may
undo the last ``NORMAL`` commits, but the WAL is sequential, so each durable commit also makes
everything before it durable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

from digest.errors import StoreError
from digest.store.migrations import APPLICATION_ID, SCHEMA_VERSION, steps_for

BUSY_TIMEOUT_S = 10.0

STEPS = dict(steps_for("sqlite"))
_T = TypeVar("_T")


class Fingerprint(NamedTuple):
    """What changes when anyone writes the file: compared around immutable reads."""

    inode: int
    size: int
    mtime_ns: int
    wal: bool


def identify(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of our store at ``conn`` (0: an empty file), or StoreError."""
    try:
        # One snapshot: a store being created by another process must not look half-made.
        conn.execute("BEGIN")
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        finally:
            rollback(conn)
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


def _create(path: Path) -> None:
    """A new store, made aside and linked into place whole: a store file is never seen empty
    (a run starting beside the one creating it would take it for a truncated store)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        conn = connect(partial)
    except StoreError as exc:  # named as the store the user asked for, not the partial file
        raise StoreError(exc.message, where=str(path), hint=exc.hint) from exc
    try:
        migrate(conn, 0)
    except sqlite3.Error as exc:
        raise store_error(path, "create the store", exc) from exc
    finally:
        conn.close()
    try:
        os.link(partial, path)
    except FileExistsError:
        pass  # another run made it first: theirs is the store
    except OSError:
        with contextlib.suppress(FileExistsError), open(path, "xb") as target:
            target.write(partial.read_bytes())  # no hard links here: an exclusive copy
    finally:
        partial.unlink(missing_ok=True)


def _refuse_emptied(path: Path) -> None:
    """StoreError when ``path`` exists but holds nothing: a store truncated (a full disk, a bad
    copy) must not pass for a new one, or its history is gone and every paper is sent again."""
    try:
        size = path.stat().st_size
        wal = Path(f"{path}-wal")
        pending = wal.exists() and wal.stat().st_size > 0
    except OSError:
        return
    if size == 0 and not pending:
        raise StoreError(
            "the store file is empty (0 bytes): its history of sent papers is gone, and a run "
            "would send everything again",
            where=str(path),
            hint="restore it from a backup; to start afresh on purpose, move it away and run "
            "`digest store init`",
        )


def check_intact(conn: sqlite3.Connection, path: Path) -> None:
    """StoreError when SQLite finds the file damaged (a page overwritten, cut short)."""
    try:
        found = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    else:
        problem = "" if found and found[0] == "ok" else str(found[0] if found else "no answer")
    problem = " ".join(problem.replace("*** in database main ***", "").split())
    if problem:
        raise StoreError(
            f"the store is damaged ({problem}); nothing was written to it",
            where=str(path),
            hint="restore it from a backup, or try `sqlite3 FILE .recover` into a new file",
        )


def switch_to_wal(conn: sqlite3.Connection) -> str:
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


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply the migrations after ``version``, one transaction each."""
    for number in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied this step while we waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in STEPS[number]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")  # an int we own, not input
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection in autocommit mode (transactions are explicit)."""
    try:
        return sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise store_error(path, "open the store", exc) from exc


def connect_readonly(path: Path, *, immutable: bool) -> sqlite3.Connection:
    """A read-only connection; ``immutable`` also promises SQLite that nobody writes meanwhile."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    if immutable:
        uri += "&immutable=1"
    try:
        return sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise store_error(path, "open the store read-only", exc) from exc


def memory() -> sqlite3.Connection:
    """An empty in-memory database."""
    return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)


def fingerprint(path: Path) -> Fingerprint:
    """The file's identity, size and time, and whether it has a ``-wal``."""
    info = path.stat()
    wal = path.with_name(path.name + "-wal").exists()
    return Fingerprint(info.st_ino, info.st_size, info.st_mtime_ns, wal)


def check_writable(path: Path) -> None:
    """StoreError unless the file and its folder are writable (SQLite would go read-only)."""
    for target in (path, path.parent):
        if not os.access(target, os.W_OK):
            raise StoreError(
                f"the store is not writable ({target} is read-only for this user)",
                where=str(path),
                hint="fix the permissions (SQLite also writes -wal and -shm files next to it)",
            )


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any, ignoring errors (the first error is reported)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def store_error(path: Path, action: str, exc: sqlite3.Error) -> StoreError:
    """``exc`` as a StoreError naming the file, with a hint fitting its cause."""
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


class Database:
    """One open store file: its connection and the transactions the store runs on it."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        readonly: bool,
        snapshot: Fingerprint | None = None,
    ) -> None:
        self.path = path
        self.readonly = readonly
        self._conn = conn
        self._snapshot = snapshot

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> Database:
        """Open (read-write: create and upgrade) the store file at ``path``.

        Read-write: creates missing parent directories and the file, switches to WAL, turns on
        foreign keys and a busy timeout, and applies the pending migrations. Raises
        :class:`StoreError` naming the file when it is not a paper-digest store, was made by a
        newer version, or cannot be created or written.
        """
        if path.is_dir():
            raise StoreError(
                "is a directory, not a store file",
                where=str(path),
                hint="set [digest] store to a file name, e.g. digest.db",
            )
        _refuse_emptied(path)
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
        if not path.exists():
            _create(path)
        conn = connect(path)
        try:
            version = identify(conn, path)
            if version:
                check_intact(conn, path)  # before anything is written to it
            check_writable(path)
            conn.execute("PRAGMA foreign_keys = ON")
            # The journal mode is stored in the file, so only switch our own (identified) stores.
            mode = switch_to_wal(conn)
            if mode.lower() != "wal":
                raise StoreError(
                    f"cannot switch the store to WAL mode (it stays in {mode!r})",
                    where=str(path),
                    hint="keep the store on a local disk; network filesystems cannot do WAL",
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, version)
        except sqlite3.Error as exc:
            conn.close()
            raise store_error(path, "open the store", exc) from exc
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, readonly=False)

    @classmethod
    def _open_readonly(cls, path: Path) -> Database:
        if not path.exists():
            empty = memory()
            migrate(empty, 0)
            return cls(path, empty, readonly=True)
        for _attempt in range(3):
            before = fingerprint(path)
            conn = connect_readonly(path, immutable=not before.wal)
            try:
                version = identify(conn, path)
                if version < SCHEMA_VERSION:
                    copy = memory()
                    conn.backup(copy)
                    conn.close()
                    if before.wal or fingerprint(path) == before:
                        copy.execute("PRAGMA foreign_keys = ON")
                        migrate(copy, version)
                        return cls(path, copy, readonly=True)
                    copy.close()
                    continue
                conn.execute("PRAGMA query_only = ON")
                check_intact(conn, path)
            except sqlite3.Error as exc:
                conn.close()
                raise store_error(path, "read the store", exc) from exc
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
        """Close the connection."""
        self._conn.close()

    def reclaim(self) -> None:
        """Fold the WAL back into the file and empty it (after pruning, after a big run).

        Pages freed by pruning are reused for new rows, so the file stops growing at its working
        size; emptying the WAL keeps the ``-wal`` beside it from holding a run's worth of pages.
        """
        if not self.readonly:
            with contextlib.suppress(sqlite3.Error):  # busy readers: the next run folds it
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def write(
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
                rollback(conn)
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            rollback(conn)
            raise store_error(self.path, action, exc) from exc
        finally:
            if durable:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA synchronous = NORMAL")
        return result

    def read(
        self, action: str, work: Callable[[sqlite3.Connection], _T], *, several: bool = False
    ) -> _T:
        """Run ``work``; ``several`` statements share one read transaction, so one snapshot."""
        run = self._in_snapshot if several else (lambda work: work(self._conn))
        try:
            result = run(work)
            if self._snapshot is not None and fingerprint(self.path) != self._snapshot:
                # A writer came along while we read an immutable view: read it properly.
                self._conn.close()
                self._conn = connect_readonly(self.path, immutable=False)
                self._conn.execute("PRAGMA query_only = ON")
                self._snapshot = None
                result = run(work)
        except sqlite3.Error as exc:
            raise store_error(self.path, action, exc) from exc
        return result

    def _in_snapshot(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            return work(conn)
        finally:
            rollback(conn)
