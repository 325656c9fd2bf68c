"""The Store interface: papers already seen, the per-subscriber delivery ledger, the run lock.

Every backend (``sqlite`` by default; see :data:`digest.registry.STORES`) keeps these promises
(DESIGN.md 1-4), and the pipeline relies on nothing else:

- A paper is *known* when the store has it by versionless arXiv id or by any title it was ever
  seen under (the rule is :mod:`digest.identity`'s); known papers come back under the key they
  were first stored with, so the ledger never holds one paper under two keys. Identities are kept
  for good; the records of papers that can no longer be offered are pruned.
- The ledger holds one row per digest (:mod:`digest.store.ledger`): ``pending`` from the plan
  (:meth:`Store.plan_digests`) until the channel accepted it (:meth:`Store.mark_sent`) or refused
  it (:meth:`Store.mark_failed`). A sent digest is never turned back, and the papers of an open
  one stay owed (:meth:`Store.owed_papers`), whatever their age.
- Every call that writes is one transaction: nothing is half-written. Marks come in groups (one
  transaction and one fsync for many digests); the journal (:mod:`digest.store.journal`) keeps
  what a channel accepted until the store has recorded it.
- A store opened ``readonly`` never creates, writes or migrates anything.
- :meth:`Store.run_lock` lets one run at a time plan and send on a store of one sender; on a
  ``shared`` store (PostgreSQL) any number of runs send together: one plans under
  :meth:`Store.planning_lock`, and each sends the digests it claims (:meth:`Store.claim_digests`,
  a lease that a worker that dies lets run out).

Reads for the plan are made for all subscribers in one call each and cover only papers that can
still be offered (the lookback window and what is owed), never a subscriber's whole history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from digest import registry
from digest.errors import StoreError
from digest.models import Paper

__all__ = [
    "Accepted",
    "Connection",
    "Observed",
    "OpenDigest",
    "PlannedDigest",
    "PruneReport",
    "Refused",
    "SeenPaper",
    "SqlDatabase",
    "Store",
    "StoreStats",
    "SubscriberState",
    "address_of",
    "open_store",
    "scheme_of",
]


_T = TypeVar("_T")


def address_of(email: str) -> str:
    """An address as stores key it: Ada@Example.org and ada@example.org are one subscriber, so
    a change of case in the config never sends anyone a paper twice."""
    return email.strip().lower()


@dataclass(frozen=True)
class Observed:
    """What :meth:`Store.observe` found: papers never seen before, and papers already known.

    Each paper appears once (duplicates within the input are merged), under its canonical key.
    """

    new: list[Paper]
    known: list[Paper]


@dataclass(frozen=True)
class PlannedDigest:
    """What a run means to send one subscriber: the keys listed, those passed over, and what
    the email says of the plan (how many matched, how many papers were new)."""

    email: str
    papers: tuple[str, ...]
    passed_over: tuple[str, ...] = ()
    matched: int = 0
    new_count: int = 0


@dataclass(frozen=True)
class OpenDigest:
    """A digest recorded as pending: its row, its stable name, what it lists, what its email
    says of the plan."""

    row: int
    email: str
    digest_id: str
    papers: tuple[str, ...]
    passed_over: tuple[str, ...] = ()
    attempts: int = 0
    matched: int = 0
    new_count: int = 0


@dataclass(frozen=True)
class Accepted:
    """A digest the channel accepted, with its receipt (a Message-ID, a feed urn)."""

    row: int
    email: str
    receipt: str
    papers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refused:
    """A digest the channel refused, and why; ``bounced`` when the mail server refused the
    address itself for good (a 5xx): enough of those in a row suspend the subscriber.
    ``neutral``: not tried, or failed through nobody's fault (the channel was down): the
    subscriber's bounces in a row neither grow nor start again."""

    row: int
    email: str
    reason: str
    bounced: bool = False
    neutral: bool = False


@dataclass(frozen=True)
class SubscriberState:
    """What the store knows of one subscriber (the config says who is subscribed)."""

    email: str
    status: str = "active"  # active, unsubscribed, suspended
    changed: str | None = None
    how: str | None = None
    bounces: int = 0
    last_error: str | None = None
    last_sent: str | None = None
    digests_sent: int = 0
    papers_received: int = 0


@dataclass(frozen=True)
class PastDigest:
    """A digest sent to a reader, as the ledger keeps it: for the archive and "view in
    browser" (its papers are rebuilt from the store's records while it keeps them)."""

    digest_id: str
    day: str
    papers: tuple[str, ...]
    matched: int
    new_count: int
    sent: str


@dataclass(frozen=True)
class KeptProfile:
    """A reader's profile as the store keeps it (:mod:`digest.match.profile`): the tag of what
    it was fitted from, its float32 weights, and the keys of the papers marked "more" its
    why-lines may name."""

    tag: str
    weights: bytes
    marked: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeenPaper:
    """One row of ``digest seen list``."""

    key: str
    arxiv_id: str | None
    title: str
    first_seen: dt.datetime
    sent: int


@dataclass(frozen=True)
class PruneReport:
    """What :meth:`Store.prune` removed."""

    digests: int
    records: int


@dataclass(frozen=True)
class StoreStats:
    """Counts for ``digest seen stats``."""

    location: str
    schema_version: int
    latest_schema: int  # the version this release brings a store to (a run upgrades it)
    size: int  # bytes on disk (the SQLite file and its -wal), or the database's size
    papers: int
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    sent: int  # papers delivered, counted per subscriber, in digests still held
    pending: int
    failed: int
    digests: int
    subscribers: int
    runs: int

    def as_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in display order."""
        return [
            ("store", self.location),
            ("schema version", str(self.schema_version)),
            ("size (bytes)", str(self.size)),
            ("papers seen", str(self.papers)),
            ("first seen", self.first_seen.isoformat() if self.first_seen else "-"),
            ("last seen", self.last_seen.isoformat() if self.last_seen else "-"),
            ("digests sent", str(self.digests)),
            ("papers delivered", str(self.sent)),
            ("papers pending", str(self.pending)),
            ("papers failed", str(self.failed)),
            ("subscribers", str(self.subscribers)),
            ("runs", str(self.runs)),
        ]


class Cursor(Protocol):
    """What the shared SQL reads back from a statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def description(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The DB-API subset the shared SQL (:mod:`.papers`, :mod:`.ledger`) runs on, ``?`` params."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...


class SqlDatabase(Protocol):
    """A backend's connection: every call one transaction (``several`` reads share one)."""

    readonly: bool

    def read(
        self, action: str, work: Callable[[Connection], _T], *, several: bool = False
    ) -> _T: ...

    def write(
        self, action: str, work: Callable[[Connection], _T], *, durable: bool = False
    ) -> _T: ...

    def reclaim(self) -> None: ...

    def close(self) -> None: ...


class PaperHistory(Protocol):
    """The papers a store has seen and what each reader was sent or owes of them."""

    def observe(
        self, papers: Sequence[Paper], now: dt.datetime, *, record: bool = True
    ) -> Observed:
        """Split ``papers`` into new and known ones; with ``record``, remember them all."""

    def recent_papers(self, since: dt.datetime) -> list[Paper]:
        """The latest record of every paper first seen at or after ``since``, newest first."""

    def owed_papers(self, emails: Collection[str]) -> dict[str, list[Paper]]:
        """Per address (as given), the papers of its open digests, of any age."""

    def delivered_keys(
        self, emails: Collection[str], since: dt.datetime
    ) -> dict[str, frozenset[str]]:
        """Per address, the keys its digests sent since ``since`` listed or passed over
        (subscribers with the same history may share one set)."""

    def papers_by_key(self, keys: Collection[str]) -> dict[str, Paper]:
        """The stored records of ``keys`` (those not pruned)."""


class PaperExtras(Protocol):
    """What the matchers keep between runs: paper embeddings and fetched liked papers."""

    def paper_vectors(self, keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """The stored embeddings of ``keys``: what made each (a tag), and its float32 bytes."""

    def recent_paper_vectors(self, model: str, limit: int) -> list[tuple[str, bytes]]:
        """The (key, float32 bytes) of the ``limit`` most recently seen papers that ``model``
        embedded: the collection closeness in meaning is judged against."""

    def save_paper_vectors(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep these (key, tag, vector) embeddings (nothing, on a read-only store)."""

    def liked_papers(self, ids: Collection[str]) -> dict[str, Paper]:
        """The liked papers of ``ids`` fetched earlier, by arXiv id."""

    def save_liked_papers(self, papers: Sequence[Paper], now: dt.datetime) -> None:
        """Keep these fetched liked papers (nothing, on a read-only store)."""


class ReaderRecords(Protocol):
    """What readers keep in the store: their past digests, saved preferences, verdicts and
    fitted profiles."""

    def past_digests(self, email: str, limit: int = 100) -> list[PastDigest]:
        """The digests sent to ``email``, newest first, as far back as the store keeps them."""

    def past_digest(self, email: str, digest_id: str) -> PastDigest | None:
        """One digest sent to ``email``; None when it is not theirs or no longer kept."""

    def preferences(self, emails: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
        """What readers changed on their preferences page, by address (of ``emails``, or all)."""

    def save_preferences(self, email: str, settings: Mapping[str, Any], now: dt.datetime) -> None:
        """Keep a reader's preferences (an empty mapping drops them)."""

    def verdicts(self, emails: Collection[str] | None = None) -> dict[str, dict[str, int]]:
        """Readers' verdicts on papers (+1 more like this, -1 fewer), by address then paper
        key (of ``emails``, or every reader)."""

    def verdicts_on(self, keys: Collection[str]) -> dict[str, set[str]]:
        """Which of the papers ``keys`` each reader gave a verdict on, by address."""

    def verdict_revisions(self, emails: Collection[str]) -> dict[str, int]:
        """The revision of the verdicts of each reader of ``emails`` who holds any: it rises
        with every change to them."""

    def record_verdict(self, email: str, key: str, verdict: int | None, now: dt.datetime) -> bool:
        """Record a reader's verdict on the stored paper ``key`` (None clears it); whether
        anything changed."""

    def reader_profiles(self, emails: Collection[str]) -> dict[str, KeptProfile]:
        """The kept profile of each reader of ``emails`` that has one, by address."""

    def save_reader_profiles(self, profiles: Mapping[str, KeptProfile]) -> None:
        """Keep these profiles, by address."""


class Ledger(Protocol):
    """Runs and digests: what was planned, sent and refused, and each subscriber's standing."""

    @property
    def record_every(self) -> int:
        """How many accepted digests are recorded together (1: each at once)."""

    @property
    def journal_path(self) -> Path:
        """Where this host keeps the journal of accepted digests for this store."""

    def begin_run(self, now: dt.datetime, *, dry_run: bool = False) -> int: ...

    def finish_run(self, run_id: int, now: dt.datetime, summary: str) -> None: ...

    def last_run(self, before: dt.datetime) -> dt.datetime | None:
        """When the last real run (not a dry run) that started before ``before`` started."""

    def plan_digests(
        self, run_id: int, day: dt.date, planned: Sequence[PlannedDigest], now: dt.datetime
    ) -> list[OpenDigest]:
        """Record ``planned`` as pending, re-using each subscriber's open digest, in one go."""

    def mark_sent(self, run_id: int, accepted: Sequence[Accepted], now: dt.datetime) -> int:
        """Record digests the channel accepted (durably); how many were not recorded before."""

    def mark_failed(
        self,
        run_id: int,
        refused: Sequence[Refused],
        now: dt.datetime,
        *,
        suspend_after: int | None = None,
    ) -> list[str]:
        """Record digests the channel refused (their papers stay owed); a subscriber whose
        address bounced in ``suspend_after`` runs in a row is suspended. Returns the addresses
        suspended now."""

    def subscriber_states(
        self, emails: Collection[str] | None = None
    ) -> dict[str, SubscriberState]:
        """What the store knows of each subscriber, by address."""

    def set_subscriber_status(
        self, email: str, status: str, how: str, now: dt.datetime, *, error: str | None = None
    ) -> None:
        """Unsubscribe, suspend or reactivate a subscriber."""


class DigestClaims(Protocol):
    """Sharing a run's sending between workers: the planning lock and claims on digests."""

    @property
    def shared(self) -> bool:
        """Whether several workers (on several hosts) may send from this store at once."""

    def planning_lock(self) -> AbstractContextManager[None]:
        """Held while a run plans, so that one plan is made at a time across workers."""

    def work_in_progress(self, day: dt.date, now: dt.datetime) -> bool:
        """Whether digests of a plan made for ``day`` wait to be sent (or, on a shared store,
        another worker is sending any plan's): then this run sends, and does not plan."""

    def claim_digests(
        self, worker: str, limit: int, now: dt.datetime, lease: dt.timedelta
    ) -> list[OpenDigest]:
        """Claim up to ``limit`` pending digests for ``worker`` until ``now + lease``, oldest
        first; a live claim of another worker is never taken."""

    def renew_claims(self, worker: str, now: dt.datetime, lease: dt.timedelta) -> None:
        """Extend ``worker``'s claims: it is still sending them."""

    def release_claims(self, worker: str) -> None:
        """Give up ``worker``'s claims on digests it did not send."""

    def live_claimers(self, now: dt.datetime) -> list[str]:
        """The workers that hold a live claim on a pending digest."""

    def claimed_elsewhere(self, worker: str, now: dt.datetime) -> dt.datetime | None:
        """When the first live claim of another worker on a pending digest runs out, if any."""


TableRows = tuple[list[str], list[tuple[Any, ...]]]  # a table's columns, then its rows


class Administration(Protocol):
    """The store as an operator handles it: where it is, its run lock, pruning, listing,
    statistics, forgetting, and its lifetime."""

    location: str

    readonly: bool

    def close(self) -> None: ...

    def run_lock(self, *, now: dt.datetime | None = None) -> AbstractContextManager[None]:
        """Hold the run lock for a ``with`` block, or raise ``LockedError`` at once."""

    def prune(self, now: dt.datetime, keep: dt.timedelta) -> PruneReport:
        """Drop what can no longer matter: digests sent and records of papers first seen more
        than ``keep`` ago (what is owed is kept)."""

    def list_seen(self, limit: int | None = None) -> list[SeenPaper]: ...

    def stats(self) -> StoreStats: ...

    def forget(self, key: str) -> bool:
        """Remove the paper with this key or arXiv id; False when no such paper is stored."""

    def reset(self) -> None:
        """Forget every paper, digest and run; keep the schema."""

    def dump(self) -> dict[str, TableRows]:
        """Every table the store holds, in an order that satisfies its foreign keys: what
        ``digest store migrate`` copies to another backend."""

    def load(self, tables: Mapping[str, TableRows]) -> None:
        """Insert ``tables`` (as :meth:`dump` gives them) into this empty store, ids kept, in
        one transaction."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class Store(
    PaperHistory, PaperExtras, ReaderRecords, Ledger, DigestClaims, Administration, Protocol
):
    """What the pipeline and the ``seen``/``subscribers`` commands need of a store: every role.
    A stage that needs only some of them takes those (``Sending`` takes a ``Ledger``)."""


class StoreBackend(Protocol):
    """A registered store backend: opens the store a ``[digest] store`` value names."""

    def open_location(self, location: str, *, base_dir: Path, readonly: bool) -> Store:
        """The store at ``location`` (a path relative to ``base_dir``, or a URL), opened."""


def scheme_of(location: str) -> str:
    """The backend a ``[digest] store`` value names: its URL scheme, ``sqlite`` for a path."""
    head, sep, _ = location.partition("://")
    if sep and head.isascii() and head.replace("+", "").isalnum() and len(head) > 1:
        scheme = head.lower()
        return "postgresql" if scheme in ("postgres", "postgresql+psycopg") else scheme
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
    backend = registry.STORES.load(scheme)
    return backend.open_location(location, base_dir=base_dir, readonly=readonly)
