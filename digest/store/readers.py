"""What the reader's pages read and write, in SQL every backend runs: a reader's past digests
(the archive, "view in browser") and the preferences they saved on their page."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from digest.store import Connection, PastDigest


def past_digests(conn: Connection, address: str, limit: int) -> list[PastDigest]:
    """The digests sent to ``address``, newest first (as many as the store still keeps)."""
    rows = conn.execute(
        "SELECT digest_id, day, papers, matched, new_count, updated FROM digests "
        "WHERE email = ? AND status = 'sent' ORDER BY day DESC, id DESC LIMIT ?",
        (address, limit),
    ).fetchall()
    return [_past(row) for row in rows]


def past_digest(conn: Connection, address: str, digest_id: str) -> PastDigest | None:
    """The sent digest ``digest_id`` of ``address`` (None for another reader's, or none)."""
    row = conn.execute(
        "SELECT digest_id, day, papers, matched, new_count, updated FROM digests "
        "WHERE email = ? AND digest_id = ? AND status = 'sent'",
        (address, digest_id),
    ).fetchone()
    return _past(row) if row else None


def _past(row: Any) -> PastDigest:
    name, day, papers, matched, new_count, updated = row
    return PastDigest(
        digest_id=str(name),
        day=str(day),
        papers=tuple(str(papers).split()),
        matched=int(matched),
        new_count=int(new_count),
        sent=str(updated),
    )


def preferences(conn: Connection, addresses: Collection[str] | None) -> dict[str, dict[str, Any]]:
    """The preferences saved by each reader (of ``addresses``, or all), by address."""
    rows = conn.execute("SELECT email, settings FROM preferences").fetchall()
    wanted = None if addresses is None else set(addresses)
    found: dict[str, dict[str, Any]] = {}
    for email, settings in rows:
        if wanted is None or email in wanted:
            value = json.loads(settings)
            if isinstance(value, dict):
                found[str(email)] = value
    return found


def save_preferences(
    conn: Connection, address: str, settings: Mapping[str, Any], stamp: str
) -> None:
    """Keep ``settings`` as ``address``'s preferences (replacing earlier ones; empty: none)."""
    conn.execute("DELETE FROM preferences WHERE email = ?", (address,))
    if settings:
        conn.execute(
            "INSERT INTO preferences (email, settings, changed) VALUES (?, ?, ?)",
            (address, json.dumps(dict(settings), sort_keys=True), stamp),
        )
