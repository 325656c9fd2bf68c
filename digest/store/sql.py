"""The Store over the SQL every backend shares: all of it but opening, locking and a few facts.

:class:`SqlStore` runs :mod:`digest.store.papers` and :mod:`digest.store.ledger` through a
:class:`SqlDatabase` (one transaction per call); a backend subclasses it with how it opens, how
runs exclude each other, where the journal lives, and its schema version and size. Times are
stored as fixed-width UTC ISO text, so text order is time order in any SQL.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Self, TypeVar

from digest.errors import StoreError
from digest.identity import Resolver
from digest.identity import arxiv_id as parse_arxiv_id
from digest.models import Paper
from digest.store import (
    Accepted,
    Connection,
    KeptProfile,
    Observed,
    OpenDigest,
    PastDigest,
    PlannedDigest,
    PruneReport,
    Refused,
    SeenPaper,
    SqlDatabase,
    StoreStats,
    SubscriberState,
    TableRows,
    address_of,
    ledger,
    readers,
    verdicts,
)
from digest.store.claims import Claiming, iso, parse_time
from digest.store.papers import (
    PRUNED,
    PaperTable,
    count_sent,
    forget_paper,
    load_paper,
    prune_records,
    recent_records,
    records_of,
    save_papers,
    seen_rows,
    title_of,
)
from digest.store.vectors import InterestStorage, prune_vectors

_LOADED_MAX = 10_000  # parsed paper records kept per store
# Every table a store holds, in an order that satisfies the foreign keys, with its key.
TABLES = {
    "runs": "id",
    "papers": "key",
    "paper_vectors": "key",
    "liked_papers": "arxiv_id",
    "paper_titles": "title_key, paper_key",
    "verdicts": "email, paper_key",
    "verdict_revisions": "email",
    "reader_profiles": "email",
    "digests": "id",
    "subscribers": "email",
    "preferences": "email",
}
RUNS_KEPT = 1000  # rows of the runs table kept by prune
_T = TypeVar("_T")


class SqlStore(Claiming, InterestStorage):
    """The shared part of the SQL backends (see the module docstring)."""

    shared: ClassVar[bool] = False  # whether several workers may send from it at once
    record_every: ClassVar[int] = 100  # accepted digests recorded together (see digest.send)
    # A shared store records each digest at once, but adds to the papers' sent counts once per
    # this many: every digest names the day's popular papers, and workers that each updated
    # those rows in every transaction would wait in turn for each other's commit.
    count_every: ClassVar[int] = 1
    latest_schema: ClassVar[int]  # each backend's newest schema version

    def __init__(self, database: SqlDatabase, location: str) -> None:
        self.location = location
        self.readonly = database.readonly
        self._db = database
        self._loaded: dict[str, tuple[str, Paper]] = {}
        self._uncounted: list[str] = []  # papers of recorded digests, not yet in sent_to
        self._uncounted_digests = 0

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _schema_version(self, conn: Connection) -> int:
        raise NotImplementedError

    def _size(self) -> int:
        raise NotImplementedError

    # --- seen papers -----------------------------------------------------------------------------

    def observe(
        self, papers: Sequence[Paper], now: dt.datetime, *, record: bool = True
    ) -> Observed:
        """Split ``papers`` into new and known ones; with ``record``, remember them all.

        Recording inserts the new papers (first seen ``now``) and updates the known ones with the
        merged record (an arXiv id learnt later is filled in), in one transaction.
        """
        stamp = iso(now)

        def classify(conn: Connection) -> Resolver:
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
        rows = self._db.read("read recent papers", lambda conn: recent_records(conn, iso(since)))
        return [self._paper(key, record) for key, record in rows]

    # --- the ledger (see digest.store.ledger) ----------------------------------------------------

    def owed_papers(self, emails: Collection[str]) -> dict[str, list[Paper]]:
        """Per address (as given), the papers of its open digests, of any age."""

        def read(conn: Connection) -> tuple[dict[str, list[str]], dict[str, str]]:
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
        sent = self._db.read("read deliveries", lambda conn: ledger.delivered(conn, iso(since)))
        nothing: frozenset[str] = frozenset()
        if not sent:
            return dict.fromkeys(emails, nothing)
        return {email: sent.get(address_of(email), nothing) for email in emails}

    def begin_run(self, now: dt.datetime, *, dry_run: bool = False) -> int:
        """Record the start of a run and return its id (0, recording nothing, for a dry run on a
        read-only store)."""
        if self.readonly and dry_run:
            return 0

        def insert(conn: Connection) -> int:
            row = conn.execute(
                "INSERT INTO runs (started, dry_run, pid) VALUES (?, ?, ?) RETURNING id",
                (iso(now), int(dry_run), os.getpid()),
            ).fetchone()
            return int(row[0])

        return self._db.write("record the run", insert)

    def past_digests(self, email: str, limit: int = 100) -> list[PastDigest]:
        """The digests sent to ``email``, newest first, as far back as the store keeps them."""
        address = address_of(email)
        return self._db.read(
            "read the reader's digests", lambda conn: readers.past_digests(conn, address, limit)
        )

    def past_digest(self, email: str, digest_id: str) -> PastDigest | None:
        """One digest sent to ``email``; None when it is not theirs or no longer kept."""
        address = address_of(email)
        return self._db.read(
            "read the reader's digest",
            lambda conn: readers.past_digest(conn, address, digest_id),
        )

    def preferences(self, emails: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
        """What readers changed on their preferences page, by address (of ``emails``, or all)."""
        addresses = None if emails is None else {address_of(e) for e in emails}
        return self._db.read(
            "read the readers' preferences", lambda conn: readers.preferences(conn, addresses)
        )

    def save_preferences(self, email: str, settings: Mapping[str, Any], now: dt.datetime) -> None:
        """Keep a reader's preferences (an empty mapping drops them)."""
        address, stamp = address_of(email), iso(now)
        self._db.write(
            "save the reader's preferences",
            lambda conn: readers.save_preferences(conn, address, settings, stamp),
        )

    def verdicts(self, emails: Collection[str] | None = None) -> dict[str, dict[str, int]]:
        """Readers' verdicts on papers, by address then paper key (of ``emails``, or all)."""
        addresses = None if emails is None else {address_of(e) for e in emails}
        return self._db.read(
            "read the readers' verdicts", lambda conn: verdicts.verdicts(conn, addresses)
        )

    def verdicts_on(self, keys: Collection[str]) -> dict[str, set[str]]:
        """Which of the papers ``keys`` each reader gave a verdict on, by address."""
        return self._db.read(
            "read the readers' verdicts", lambda conn: verdicts.verdicts_on(conn, keys)
        )

    def verdict_revisions(self, emails: Collection[str]) -> dict[str, int]:
        """The revision of the verdicts of each reader of ``emails`` who holds any."""
        addresses = {address_of(e) for e in emails}
        return self._db.read(
            "read the readers' verdicts", lambda conn: verdicts.revisions(conn, addresses)
        )

    def record_verdict(self, email: str, key: str, verdict: int | None, now: dt.datetime) -> bool:
        """Record a reader's verdict on the stored paper ``key`` (None clears it)."""
        address, stamp = address_of(email), iso(now)
        return self._db.write(
            "record the reader's verdict",
            lambda conn: verdicts.record_verdict(conn, address, key, verdict, stamp),
        )

    def reader_profiles(self, emails: Collection[str]) -> dict[str, KeptProfile]:
        """The kept profile of each reader of ``emails`` that has one, by address."""
        addresses = {address_of(e) for e in emails}
        return self._db.read(
            "read readers' profiles", lambda conn: verdicts.read_profiles(conn, addresses)
        )

    def save_reader_profiles(self, profiles: Mapping[str, KeptProfile]) -> None:
        """Keep these profiles, by address (a read-only store keeps none)."""
        if profiles and not self.readonly:
            self._db.write(
                "save readers' profiles", lambda conn: verdicts.write_profiles(conn, profiles)
            )

    def last_run(self, before: dt.datetime) -> dt.datetime | None:
        """When the last real run (not a dry run) that started before ``before`` started."""
        row = self._db.read(
            "read the runs",
            lambda conn: conn.execute(
                "SELECT MAX(started) FROM runs WHERE dry_run = 0 AND started < ?", (iso(before),)
            ).fetchone(),
        )
        return parse_time(row[0]) if row and row[0] else None

    def finish_run(self, run_id: int, now: dt.datetime, summary: str) -> None:
        """Record the end of run ``run_id`` and its summary."""
        if self.readonly and run_id == 0:
            return

        def update(conn: Connection) -> None:
            count_sent(conn, self._uncounted)  # the sent counts kept back (see count_every)
            cursor = conn.execute(
                "UPDATE runs SET finished = ?, summary = ? WHERE id = ?",
                (iso(now), summary, run_id),
            )
            if cursor.rowcount != 1:
                raise StoreError(
                    f"there is no run {run_id} to finish",
                    where=self.location,
                    hint="finish_run takes the id begin_run returned",
                )

        self._db.write("record the end of the run", update)
        self._uncounted, self._uncounted_digests = [], 0

    def plan_digests(
        self, run_id: int, day: dt.date, planned: Sequence[PlannedDigest], now: dt.datetime
    ) -> list[OpenDigest]:
        """Record ``planned`` as pending, re-using each subscriber's open digest, in one go."""
        stamp = iso(now)
        return self._db.write(
            "record the plan",
            lambda conn: ledger.plan_digests(conn, run_id, day.isoformat(), planned, stamp),
        )

    def mark_sent(self, run_id: int, accepted: Sequence[Accepted], now: dt.datetime) -> int:
        """Record digests the channel accepted, in one durable (fsynced) transaction."""
        if not accepted:
            return 0
        stamp = iso(now)
        delivered: list[str] = []
        count_now = self._uncounted_digests + len(accepted) >= self.count_every

        def record(conn: Connection) -> int:
            delivered.clear()  # a transaction tried again starts again
            marked = ledger.record_sent(conn, run_id, accepted, stamp, delivered)
            if count_now:
                count_sent(conn, [*self._uncounted, *delivered])
            return marked

        marked = self._db.write("record deliveries", record, durable=True)
        if count_now:  # only once the transaction committed: a failed one counted nothing
            self._uncounted, self._uncounted_digests = [], 0
        else:
            self._uncounted += delivered
            self._uncounted_digests += len(accepted)
        return marked

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
        stamp = iso(now)
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
        stamp = iso(now)
        self._db.write(
            "record the subscriber's status",
            lambda conn: ledger.set_status(conn, email, status, how, stamp, error=error),
        )

    def prune(self, now: dt.datetime, keep: dt.timedelta) -> PruneReport:
        """Drop digests sent, and records of papers first seen, more than ``keep`` ago."""
        before = iso(now - keep)

        def prune(conn: Connection) -> PruneReport:
            owed = {key for keys in ledger.owed(conn).values() for key in keys}
            owed |= verdicts.voted_keys(conn)  # a reader's profile learns from them for good
            digests = ledger.prune_digests(conn, before)
            records = prune_records(conn, before, owed)
            prune_vectors(conn)
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

    def papers_by_key(self, keys: Collection[str]) -> dict[str, Paper]:
        """The stored records of ``keys`` (those still held)."""
        records = self._db.read("read papers", lambda conn: records_of(conn, keys))
        return {
            key: self._paper(key, record) for key, record in records.items() if record != PRUNED
        }

    # --- inspection and editing (``digest seen``) ------------------------------------------------

    def list_seen(self, limit: int | None = None) -> list[SeenPaper]:
        """The papers seen, newest first, with how many subscribers received each."""
        rows = self._db.read("list the papers seen", lambda conn: seen_rows(conn, limit))
        return [
            SeenPaper(str(key), arxiv, title_of(str(record)), parse_time(str(first)), int(sent))
            for key, arxiv, record, first, sent in rows
        ]

    def stats(self) -> StoreStats:
        """Counts of papers, digests and papers delivered, subscribers and runs."""

        def count(conn: Connection) -> tuple[Any, ...]:
            papers, first, last = conn.execute(
                "SELECT COUNT(*), MIN(first_seen), MAX(last_seen) FROM papers"
            ).fetchone()
            runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            version = self._schema_version(conn)
            return papers, first, last, ledger.ledger_counts(conn), runs, version

        papers, first, last, counts, runs, version = self._db.read(
            "count the store", count, several=True
        )
        return StoreStats(
            location=self.location,
            schema_version=version,
            latest_schema=self.latest_schema,
            size=self._size(),
            papers=papers,
            first_seen=parse_time(first) if first else None,
            last_seen=parse_time(last) if last else None,
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

        def forget(conn: Connection) -> bool:
            judges = verdicts.judges_of(conn, key.strip(), arxiv)
            keys = forget_paper(conn, key.strip(), arxiv)
            for found in keys:
                ledger.forget_key(conn, found)
            verdicts.revised(conn, judges)  # their verdicts on it went with it
            return bool(keys)

        return self._db.write("forget the paper", forget)

    def reset(self) -> None:
        """Forget every paper, digest, subscriber state and run; keep the schema."""

        def wipe(conn: Connection) -> None:
            # the verdicts go with the papers, and the profiles fitted from them
            for table in (
                "reader_profiles", "verdict_revisions", "digests", "subscribers", "paper_titles",
                "papers", "runs",
            ):  # fmt: skip
                conn.execute(f"DELETE FROM {table}")  # table names are constants

        self._db.write("reset the store", wipe)

    # --- copying to another backend (``digest store migrate``) ------------------------------------

    def dump(self) -> dict[str, TableRows]:
        """Every one of :data:`TABLES`: its columns and rows, in key order."""

        def read(conn: Connection, table: str) -> TableRows:
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY {TABLES[table]}")
            rows = [tuple(row) for row in cursor.fetchall()]
            return [str(column[0]) for column in cursor.description], rows

        return {
            table: self._db.read(f"read {table}", partial(read, table=table), several=True)
            for table in TABLES
        }

    def load(self, tables: Mapping[str, TableRows]) -> None:
        """Insert every table's rows in one transaction (an empty store's; ids kept)."""

        def write(conn: Connection) -> None:
            for table in TABLES:
                if table not in tables:
                    continue
                columns, rows = tables[table]
                marks = ", ".join("?" * len(columns))
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
                )
            self._after_load(conn)

        self._db.write("copy the store", write, durable=True)

    def _after_load(self, conn: Connection) -> None:
        """What a backend must do once rows came in with their ids (nothing, unless it says)."""

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
