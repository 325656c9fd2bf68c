"""``[digest] store = "postgresql://user@host/db"``: one database that several senders share.

On psycopg 3 (the ``postgres`` extra). Any number of ``digest run`` processes on any hosts use
it together: one plans the day under an advisory lock (:meth:`PostgresStore.planning_lock`), and
every one sends the digests it claims (``FOR UPDATE SKIP LOCKED`` and a lease, see
:mod:`digest.dispatch`); each accepted digest is recorded at once, so a worker that dies leaves
at most its messages in flight for another to send again. The SQL is the SQLite store's
(:mod:`.papers`, :mod:`.ledger`), run through :class:`PgDatabase`; the schema history is the
PostgreSQL steps of :mod:`.migrations`, applied on open under an advisory lock, so hosts opening a
new database together apply each step once.

The password never sits in the config: libpq reads ``$PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from digest.errors import StoreError
from digest.store import Connection, Cursor
from digest.store.migrations import SCHEMA_VERSION, steps_for
from digest.store.sql import SqlStore

if TYPE_CHECKING:
    import psycopg

__all__ = ["SCHEMA_VERSION", "PgDatabase", "PostgresStore"]

CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK = 0x5044_4753_0001  # advisory lock keys: "PDGS" + what they guard
PLANNING_LOCK = 0x5044_4753_0002
_T = TypeVar("_T")


def _pg(sql: str) -> str:
    """The shared SQL's ``?`` placeholders as psycopg's (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Adapted:
    """A psycopg connection as the shared SQL's :class:`~digest.store.Connection`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return self._conn.execute(_pg(sql), tuple(parameters))

    def executemany(self, sql: str, parameters: Any, /) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(_pg(sql), [tuple(p) for p in parameters])
        return cursor


class PgDatabase:
    """One connection; every read or write one transaction, errors as :class:`StoreError`."""

    def __init__(self, conn: psycopg.Connection[Any], location: str, *, readonly: bool) -> None:
        self.readonly = readonly
        self.location = location
        self.conn = conn
        self._adapted = _Adapted(conn)
        self._pending: psycopg.Transaction | None = None

    def read(self, action: str, work: Callable[[Connection], _T], *, several: bool = False) -> _T:
        return self._run(action, work)

    def write(self, action: str, work: Callable[[Connection], _T], *, durable: bool = False) -> _T:
        if self.readonly:
            raise StoreError(
                f"cannot {action}: the store was opened read-only",
                where=self.location,
                hint="preview and --dry-run never change the store; this is a paper-digest bug",
            )
        return self._run(action, work)

    def _run(self, action: str, work: Callable[[Connection], _T]) -> _T:
        import psycopg

        try:
            with self.conn.transaction():
                return work(self._adapted)
        except psycopg.Error as exc:
            raise _error(self.location, f"cannot {action}", exc) from exc

    def reclaim(self) -> None:
        """Nothing to do: autovacuum reuses the space of pruned rows."""

    def close(self) -> None:
        self.conn.close()


class PostgresStore(SqlStore):
    """A paper-digest store in a PostgreSQL database. Use :meth:`open_location`."""

    shared: ClassVar[bool] = True
    record_every: ClassVar[int] = 1  # another host may take over: record each digest at once
    count_every: ClassVar[int] = 100  # but the papers' sent counts once per 100 (see SqlStore)
    latest_schema: ClassVar[int] = SCHEMA_VERSION

    def __init__(self, database: PgDatabase, base_dir: Path) -> None:
        super().__init__(database, database.location)
        self._pg = database
        self._base_dir = base_dir

    @classmethod
    def open_location(cls, location: str, *, base_dir: Path, readonly: bool) -> PostgresStore:
        """Connect to the database ``location`` names and bring its schema up to date (a
        read-only store upgrades an older schema inside a transaction it never commits)."""
        shown = _without_secrets(location)
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "a postgresql:// store needs psycopg",
                where=shown,
                hint="pip install 'paper-digest[postgres]'",
            ) from exc
        try:
            # A read-only store works inside one transaction it never commits (see _migrate).
            conn = psycopg.connect(
                location,
                autocommit=not readonly,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="paper-digest",
            )
        except psycopg.Error as exc:
            raise _error(shown, "cannot connect", exc) from exc
        try:
            if readonly:
                conn.execute("SELECT 1")  # opens the transaction that is never committed
            database = PgDatabase(conn, shown, readonly=readonly)
            _migrate(database, readonly=readonly)
        except BaseException:
            conn.close()
            raise
        return cls(database, base_dir)

    @property
    def journal_path(self) -> Path:
        """This host's journal of accepted digests for this database, beside the config."""
        tag = hashlib.sha256(self.location.encode()).hexdigest()[:12]
        return self._base_dir / f".digest-postgresql-{tag}.journal"

    def run_lock(
        self, *, now: dt.datetime | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """No lock: any number of runs send together (they claim their digests)."""
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def planning_lock(self) -> Iterator[None]:
        """One plan at a time across hosts: a session advisory lock, freed if the session dies."""
        self._pg.read("wait for the planning lock", _lock(PLANNING_LOCK))
        try:
            yield
        finally:
            with contextlib.suppress(StoreError):
                self._pg.read("release the planning lock", _unlock(PLANNING_LOCK))

    def _after_load(self, conn: Connection) -> None:
        # Rows came in with their ids: new ones must start after them.
        for table in ("runs", "digests"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )

    def _schema_version(self, conn: Connection) -> int:
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _size(self) -> int:
        row = self._pg.read(
            "measure the store",
            lambda conn: conn.execute(
                "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class AS c "
                "WHERE c.relname IN ('papers', 'paper_titles', 'digests', 'subscribers', 'runs', "
                "'schema_migrations') AND pg_table_is_visible(c.oid)"
            ).fetchone(),
        )
        return int(row[0] or 0)


def _lock(key: int) -> Callable[[Connection], None]:
    return lambda conn: conn.execute("SELECT pg_advisory_lock(?)", (key,)).fetchone()


def _unlock(key: int) -> Callable[[Connection], None]:
    return lambda conn: conn.execute("SELECT pg_advisory_unlock(?)", (key,)).fetchone()


def _migrate(database: PgDatabase, *, readonly: bool) -> None:
    """Apply the steps ``schema_migrations`` lacks, in one transaction under an advisory lock.

    A read-only store takes no lock and commits nothing: on an older schema the steps are applied
    inside the transaction it works in until it is closed, and rolled back with it.
    """

    def steps(adapted: Connection, *, lock: bool) -> None:
        if lock:
            adapted.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        exists = adapted.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
        if exists is None:
            adapted.execute(
                "CREATE TABLE schema_migrations "
                "(version INTEGER PRIMARY KEY, applied TEXT NOT NULL)"
            )
        done = {int(v) for (v,) in adapted.execute("SELECT version FROM schema_migrations")}
        newer = max(done, default=0)
        if newer > SCHEMA_VERSION:
            raise StoreError(
                f"the database has schema version {newer}, newer than this paper-digest knows "
                f"({SCHEMA_VERSION})",
                where=database.location,
                hint="upgrade paper-digest on this host",
            )
        for number, statements in steps_for("postgresql"):
            if number in done:
                continue
            for statement in statements:
                adapted.execute(statement)
            adapted.execute(
                "INSERT INTO schema_migrations (version, applied) VALUES (?, ?)",
                (number, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
            )

    if readonly:
        database.read("read the schema", lambda adapted: steps(adapted, lock=False))
    else:
        database.write("update the schema", lambda adapted: steps(adapted, lock=True))


def _without_secrets(location: str) -> str:
    """``location`` as shown in messages; StoreError when it carries a password."""
    parts = urllib.parse.urlsplit(location)
    query = urllib.parse.parse_qs(parts.query)
    if parts.password is not None or "password" in query:
        raise StoreError(
            "the store URL holds a password",
            where="[digest] store",
            hint="leave it out: libpq reads $PGPASSWORD or ~/.pgpass (chmod 600)",
        )
    return location


def _error(location: str, what: str, exc: Exception) -> StoreError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StoreError(
        f"{what}: {first}",
        where=location,
        hint="is PostgreSQL up and the URL right? (`digest check` connects and says)",
    )
