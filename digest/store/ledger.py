"""The delivery ledger, in SQL every backend runs: one row per digest, and each subscriber's state.

A digest row holds the paper keys it lists (space-separated: keys never contain spaces) and
those it passed over (ranked below ``max_papers``). It is ``pending`` from the plan until the
channel accepted it (``sent``) or refused it (``failed``); a subscriber has at most one open
(pending or failed) digest, which the next plan re-uses under the same ``digest_id``, so a resend
after a crash replaces an outbox file instead of adding one, and carries the same Message-ID.

What must never be offered again is read from the sent digests of the window only
(:func:`delivered`), never a subscriber's whole history, and sent digests older than the window
can be deleted (:func:`prune_digests`): the counters of ``subscribers`` keep their totals.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from digest.store import (
    Accepted,
    Connection,
    OpenDigest,
    PlannedDigest,
    Refused,
    SubscriberState,
    address_of,
)

# Spelled out, not bound: only a literal lets the planner use the partial index ``digests_open``
# (a year of sent digests would otherwise be scanned to find the few still open).
OPEN_DIGEST = "status IN ('pending', 'failed')"


def digest_stem(address: str, day: str) -> str:
    """``YYYYMMDD.<address hash>``: the name of an address's first digest of a day."""
    tag = hashlib.sha256(address.encode("utf-8")).hexdigest()[:12]
    return f"{day.replace('-', '')}.{tag}"


def plan_digests(
    conn: Connection, run_id: int | None, day: str, planned: Sequence[PlannedDigest], stamp: str
) -> list[OpenDigest]:
    """Record ``planned`` as pending (re-using each subscriber's open digest); return them.

    Digests left pending by an earlier plan that this one does not include (their subscriber
    left, waits for a weekly day, or was not asked for) are held back as failed: still owed,
    planned again when due, but not sent by this run's workers.
    """
    conn.execute(
        "UPDATE digests SET status = 'failed', reason = 'held back: not due in the last run', "
        "claimed_by = NULL, lease_until = NULL WHERE status = 'pending'"
    )
    open_rows = {
        str(email): (int(row), str(name), int(attempts))
        for row, email, name, attempts in conn.execute(
            f"SELECT id, email, digest_id, attempts FROM digests WHERE {OPEN_DIGEST}"
        ).fetchall()
    }
    used = {
        (str(email), str(name))
        for email, name in conn.execute(
            "SELECT email, digest_id FROM digests WHERE day = ?", (day,)
        ).fetchall()
    }
    out: list[OpenDigest] = []
    for plan in planned:
        address = address_of(plan.email)
        papers, over = " ".join(plan.papers), " ".join(plan.passed_over)
        if address in open_rows:
            row, name, attempts = open_rows[address]
            conn.execute(
                "UPDATE digests SET status = 'pending', day = ?, papers = ?, passed_over = ?, "
                "run_id = ?, matched = ?, new_count = ?, claimed_by = NULL, lease_until = NULL, "
                "updated = ? WHERE id = ?",
                (day, papers, over, run_id, plan.matched, plan.new_count, stamp, row),
            )
        else:
            name = stem = digest_stem(address, day)
            number = 1
            while (address, name) in used:
                number += 1
                name = f"{stem}-{number}"
            used.add((address, name))
            row = int(
                conn.execute(
                    "INSERT INTO digests (email, digest_id, day, status, papers, passed_over, "
                    "run_id, attempts, matched, new_count, created, updated) "
                    "VALUES (?, ?, ?, 'pending', ?, ?, ?, 0, ?, ?, ?, ?) RETURNING id",
                    (
                        address,
                        name,
                        day,
                        papers,
                        over,
                        run_id,
                        plan.matched,
                        plan.new_count,
                        stamp,
                        stamp,
                    ),
                ).fetchone()[0]
            )
            attempts = 0
        out.append(
            OpenDigest(
                row, plan.email, name, plan.papers, plan.passed_over, attempts, plan.matched,
                plan.new_count,
            )
        )  # fmt: skip
    return out


def record_sent(
    conn: Connection,
    run_id: int | None,
    accepted: Sequence[Accepted],
    stamp: str,
    delivered: list[str],
) -> int:
    """Mark ``accepted`` sent (a digest already sent stays as it was); how many were marked.
    The papers of the digests marked are added to ``delivered``, for the caller to add to their
    sent counts (at once, or later: see ``SqlStore.count_every``)."""
    marked = 0
    for item in accepted:
        cursor = conn.execute(
            "UPDATE digests SET status = 'sent', message_id = ?, run_id = ?, updated = ?, "
            "reason = NULL, attempts = attempts + 1 WHERE id = ? AND status != 'sent'",
            (item.receipt, run_id, stamp, item.row),
        )
        if cursor.rowcount != 1:
            continue  # replayed from the journal after it had been recorded: count it once
        marked += 1
        delivered.extend(item.papers)
        conn.execute(
            "INSERT INTO subscribers (email, last_sent, digests_sent, papers_received) "
            "VALUES (?, ?, 1, ?) ON CONFLICT (email) DO UPDATE SET "
            "last_sent = excluded.last_sent, digests_sent = subscribers.digests_sent + 1, "
            "papers_received = subscribers.papers_received + excluded.papers_received, "
            "bounces = 0, last_error = NULL",
            (address_of(item.email), stamp, len(item.papers)),
        )
    return marked


def record_failed(
    conn: Connection,
    run_id: int | None,
    refused: Sequence[Refused],
    stamp: str,
    suspend_after: int | None = None,
) -> list[str]:
    """Mark ``refused`` failed (they stay owed). A bounce adds one to the subscriber's bounces in
    a row (any other failure starts them again at 0, as a sent digest does, but a neutral one,
    nobody's fault, leaves them as they are); at
    ``suspend_after`` the subscriber is suspended, the server's reply kept. Returns the
    addresses suspended now."""
    suspended: list[str] = []
    for item in refused:
        address = address_of(item.email)
        conn.execute(
            "UPDATE digests SET status = 'failed', reason = ?, run_id = ?, updated = ?, "
            "attempts = attempts + 1 WHERE id = ? AND status != 'sent'",
            (item.reason, run_id, stamp, item.row),
        )
        if item.neutral:
            conn.execute(
                "INSERT INTO subscribers (email, last_error) VALUES (?, ?) "
                "ON CONFLICT (email) DO UPDATE SET last_error = excluded.last_error",
                (address, item.reason[:500]),
            )
            continue
        conn.execute(
            "INSERT INTO subscribers (email, last_error, bounces) VALUES (?, ?, ?) "
            "ON CONFLICT (email) DO UPDATE SET last_error = excluded.last_error, "
            "bounces = CASE WHEN excluded.bounces > 0 THEN subscribers.bounces + 1 ELSE 0 END",
            (address, item.reason[:500], 1 if item.bounced else 0),
        )
        if suspend_after is None or not item.bounced:
            continue
        cursor = conn.execute(
            "UPDATE subscribers SET status = 'suspended', changed = ?, how = ? "
            "WHERE email = ? AND status = 'active' AND bounces >= ?",
            (stamp, f"bounced in {suspend_after} runs in a row", address, suspend_after),
        )
        if cursor.rowcount == 1:
            suspended.append(address)
    return suspended


def owed(conn: Connection) -> dict[str, list[str]]:
    """Per address, the keys its open digests list (owed, whatever their age)."""
    found: dict[str, list[str]] = {}
    for email, papers in conn.execute(
        f"SELECT email, papers FROM digests WHERE {OPEN_DIGEST} ORDER BY email, id"
    ).fetchall():
        found.setdefault(str(email), []).extend(str(papers).split())
    return found


def delivered(conn: Connection, since: str) -> dict[str, frozenset[str]]:
    """Per address, the keys its digests sent since ``since`` listed or passed over.

    Readers with the same interests were sent the same digests: each distinct history is split
    into one shared frozenset (of interned keys), so a lab of thousands costs a set per history,
    not per reader, and the digests' texts are held once each while they are read.
    """
    texts: dict[str, str] = {}
    histories: dict[str, list[str]] = {}
    for email, papers, over in conn.execute(
        # no ORDER BY: sorting by id would walk every sent digest instead of the index's range
        "SELECT email, papers, passed_over FROM digests WHERE status = 'sent' AND updated >= ?",
        (since,),
    ):  # row by row: a day of digests need not be held at once
        text = f"{papers} {over}"
        histories.setdefault(str(email), []).append(texts.setdefault(text, text))
    shared: dict[tuple[str, ...], frozenset[str]] = {}
    found: dict[str, frozenset[str]] = {}
    for email, parts in histories.items():
        history = tuple(sorted(parts))
        keys = shared.get(history)
        if keys is None:
            keys = shared[history] = frozenset(map(sys.intern, " ".join(history).split()))
        found[email] = keys
    return found


DIGEST_COLUMNS = "id, email, digest_id, papers, passed_over, attempts, matched, new_count"


def open_digest(row: Sequence[Any]) -> OpenDigest:
    """An :class:`OpenDigest` from a row of :data:`DIGEST_COLUMNS`."""
    ident, email, name, papers, over, attempts, matched, new_count = row
    return OpenDigest(
        int(ident), str(email), str(name), tuple(str(papers).split()), tuple(str(over).split()),
        int(attempts), int(matched), int(new_count),
    )  # fmt: skip


def pending_digests(conn: Connection) -> list[OpenDigest]:
    """Every pending digest, oldest first."""
    return [
        open_digest(row)
        for row in conn.execute(
            f"SELECT {DIGEST_COLUMNS} FROM digests WHERE status = 'pending' ORDER BY id"
        ).fetchall()
    ]


def claim(
    conn: Connection, worker: str, limit: int, now: str, lease_until: str, *, shared: bool
) -> list[OpenDigest]:
    """Claim up to ``limit`` pending digests for ``worker`` until ``lease_until``, oldest first.

    ``shared``: other workers send from the same store at the same time, so a digest another
    holds a live claim on is left to it, and rows another transaction is claiming are skipped
    (``FOR UPDATE SKIP LOCKED``). Otherwise one process sends alone (a lock says so): any
    claim but its own is stale.
    """
    if shared:
        chosen = (
            "SELECT id FROM digests WHERE status = 'pending' AND "
            "(claimed_by IS NULL OR lease_until < ?) ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED"
        )
        params: tuple[Any, ...] = (worker, lease_until, now, limit)
    else:
        chosen = (
            "SELECT id FROM digests WHERE status = 'pending' AND "
            "(claimed_by IS NULL OR claimed_by != ?) ORDER BY id LIMIT ?"
        )
        params = (worker, lease_until, worker, limit)
    rows = conn.execute(
        f"UPDATE digests SET claimed_by = ?, lease_until = ? WHERE id IN ({chosen}) "
        f"RETURNING {DIGEST_COLUMNS}",
        params,
    ).fetchall()
    return sorted((open_digest(row) for row in rows), key=lambda digest: digest.row)


def renew_claims(conn: Connection, worker: str, lease_until: str) -> None:
    """Extend the lease of every pending digest ``worker`` holds."""
    conn.execute(
        "UPDATE digests SET lease_until = ? WHERE claimed_by = ? AND status = 'pending'",
        (lease_until, worker),
    )


def release_claims(conn: Connection, worker: str) -> None:
    """Give up ``worker``'s claims on digests it did not send (another may take them now)."""
    conn.execute(
        "UPDATE digests SET claimed_by = NULL, lease_until = NULL "
        "WHERE claimed_by = ? AND status = 'pending'",
        (worker,),
    )


def work_in_progress(conn: Connection, day: str, now: str, *, shared: bool) -> bool:
    """Whether digests wait to be sent from a plan made for ``day`` (by another worker, or a run
    that stopped early), or, on a ``shared`` store, a live claim of any plan's."""
    row = conn.execute(
        "SELECT 1 FROM digests WHERE status = 'pending' AND day = ? LIMIT 1", (day,)
    ).fetchone()
    if row is None and shared:
        row = conn.execute(
            "SELECT 1 FROM digests WHERE status = 'pending' AND lease_until >= ? LIMIT 1", (now,)
        ).fetchone()
    return row is not None


def live_claimers(conn: Connection, now: str) -> list[str]:
    """The workers holding a live claim on a pending digest."""
    rows = conn.execute(
        "SELECT DISTINCT claimed_by FROM digests WHERE status = 'pending' "
        "AND claimed_by IS NOT NULL AND lease_until >= ?",
        (now,),
    ).fetchall()
    return sorted(str(row[0]) for row in rows)


def claimed_elsewhere(conn: Connection, worker: str, now: str) -> str | None:
    """When the first live claim another worker holds on a pending digest runs out, if any."""
    row = conn.execute(
        "SELECT MIN(lease_until) FROM digests WHERE status = 'pending' AND claimed_by != ? "
        "AND lease_until >= ?",
        (worker, now),
    ).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def forget_key(conn: Connection, key: str) -> None:
    """Remove ``key`` from every digest, so a forgotten paper can be offered again."""
    pattern = "% " + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " %"
    rows = conn.execute(
        "SELECT id, papers, passed_over FROM digests WHERE "
        "(' ' || papers || ' ') LIKE ? ESCAPE '\\' OR (' ' || passed_over || ' ') LIKE ? "
        "ESCAPE '\\'",
        (pattern, pattern),
    ).fetchall()
    for row, papers, over in rows:
        keep = " ".join(k for k in str(papers).split() if k != key)
        keep_over = " ".join(k for k in str(over).split() if k != key)
        conn.execute(
            "UPDATE digests SET papers = ?, passed_over = ? WHERE id = ?", (keep, keep_over, row)
        )


def prune_digests(conn: Connection, before: str) -> int:
    """Delete sent digests last changed before ``before``; how many went."""
    cursor = conn.execute("DELETE FROM digests WHERE status = 'sent' AND updated < ?", (before,))
    return max(cursor.rowcount, 0)


def ledger_counts(conn: Connection) -> dict[str, int]:
    """Papers listed in sent / pending / failed digests, digests sent, subscribers known."""
    counts = {"sent": 0, "pending": 0, "failed": 0, "digests": 0}
    for status, papers in conn.execute("SELECT status, papers FROM digests").fetchall():
        if status in counts:
            counts[str(status)] += len(str(papers).split())
        counts["digests"] += status == "sent"
    subscribers = conn.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0]
    counts["subscribers"] = int(subscribers)
    return counts


def subscriber_states(
    conn: Connection, addresses: Iterable[str] | None = None
) -> dict[str, SubscriberState]:
    """Every subscriber the store knows (or those of ``addresses``), by address."""
    rows: list[Any] = conn.execute(
        "SELECT email, status, changed, how, bounces, last_error, last_sent, digests_sent, "
        "papers_received FROM subscribers"
    ).fetchall()
    wanted = None if addresses is None else {address_of(a) for a in addresses}
    return {
        str(row[0]): SubscriberState(*row)
        for row in rows
        if wanted is None or str(row[0]) in wanted
    }


def set_status(
    conn: Connection, address: str, status: str, how: str, stamp: str, *, error: str | None = None
) -> None:
    """Set a subscriber's status (``active``, ``unsubscribed``, ``suspended``) and why."""
    conn.execute(
        "INSERT INTO subscribers (email, status, changed, how, last_error) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET status = excluded.status, "
        "changed = excluded.changed, how = excluded.how, "
        "last_error = COALESCE(excluded.last_error, subscribers.last_error), "
        "bounces = CASE WHEN excluded.status = 'active' THEN 0 ELSE subscribers.bounces END",
        (address_of(address), status, stamp, how, error),
    )
