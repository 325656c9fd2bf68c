"""Who sends which digest: the claim methods the SQL stores share (see :mod:`digest.dispatch`).

A claim is a worker's name and a lease on a pending digest. On a store of one sender the claims
only mark progress; on a ``shared`` one they keep workers apart (see :func:`.ledger.claim`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import ClassVar

from digest.store import OpenDigest, SqlDatabase, ledger


class Claiming:
    """The claim methods; a subclass sets ``_db`` and says whether it is ``shared``."""

    shared: ClassVar[bool] = False
    _db: SqlDatabase

    def planning_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while a run plans, so one plan is made at a time (the run lock already gives
        a backend with one sender that)."""
        return contextlib.nullcontext()

    def work_in_progress(self, day: dt.date, now: dt.datetime) -> bool:
        """Whether digests of a plan made for ``day`` wait to be sent (or, on a shared store,
        another worker is sending any plan's)."""
        return self._db.read(
            "look for work in progress",
            lambda conn: ledger.work_in_progress(
                conn, day.isoformat(), iso(now), shared=self.shared
            ),
        )

    def claim_digests(
        self, worker: str, limit: int, now: dt.datetime, lease: dt.timedelta
    ) -> list[OpenDigest]:
        """Claim up to ``limit`` pending digests for ``worker`` until ``now + lease``."""
        stamp, until = iso(now), iso(now + lease)
        return self._db.write(
            "claim digests to send",
            lambda conn: ledger.claim(conn, worker, limit, stamp, until, shared=self.shared),
        )

    def renew_claims(self, worker: str, now: dt.datetime, lease: dt.timedelta) -> None:
        """Extend ``worker``'s claims to ``now + lease``: it is still sending them."""
        until = iso(now + lease)
        self._db.write("renew claims", lambda conn: ledger.renew_claims(conn, worker, until))

    def release_claims(self, worker: str) -> None:
        """Give up ``worker``'s claims on digests it did not send."""
        self._db.write("release claims", lambda conn: ledger.release_claims(conn, worker))

    def live_claimers(self, now: dt.datetime) -> list[str]:
        """The workers that hold a live claim on a pending digest."""
        return self._db.read(
            "look for other workers", lambda conn: ledger.live_claimers(conn, iso(now))
        )

    def claimed_elsewhere(self, worker: str, now: dt.datetime) -> dt.datetime | None:
        """When the first live claim another worker holds on a pending digest runs out."""
        until = self._db.read(
            "look for other workers' claims",
            lambda conn: ledger.claimed_elsewhere(conn, worker, iso(now)),
        )
        return parse_time(until) if until else None


def iso(when: dt.datetime) -> str:
    """``when`` as the stores write times (ValueError for a time without a zone)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when!r} has no timezone; the store takes timezone-aware times")
    # One fixed width and zone, so text order is time order in SQL.
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> dt.datetime:
    """A time as the stores write them, read back."""
    return dt.datetime.fromisoformat(text)
