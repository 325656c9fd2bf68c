"""Readers' verdicts on papers ("more like this", "fewer like this") and the profiles fitted from
them, in SQL every backend runs.

A verdict is +1 or -1 per reader and paper; a later one replaces it and clearing drops it. The
papers voted on keep their records (and so their vectors) when the store prunes old papers, so
a reader's profile (:mod:`digest.match.profile`) keeps learning from them. A profile is kept
with a tag naming what it was fitted from, so it is fitted again only when that changes.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Sequence

from digest.store import Connection

MORE, LESS = 1, -1


def verdicts(conn: Connection, addresses: Collection[str] | None) -> dict[str, dict[str, int]]:
    """Each reader's verdicts by paper key (of ``addresses``, or every reader)."""
    rows = conn.execute(
        "SELECT email, paper_key, verdict FROM verdicts ORDER BY email, changed, paper_key"
    ).fetchall()
    wanted = None if addresses is None else set(addresses)
    found: dict[str, dict[str, int]] = {}
    for email, key, verdict in rows:
        if wanted is None or email in wanted:
            found.setdefault(str(email), {})[str(key)] = int(verdict)
    return found


def record_verdict(
    conn: Connection, address: str, key: str, verdict: int | None, stamp: str
) -> bool:
    """Record ``address``'s ``verdict`` on paper ``key`` (None: clear it); whether anything
    changed."""
    row = conn.execute(
        "SELECT verdict FROM verdicts WHERE email = ? AND paper_key = ?", (address, key)
    ).fetchone()
    before = None if row is None else int(row[0])
    if before == verdict:
        return False
    conn.execute("DELETE FROM verdicts WHERE email = ? AND paper_key = ?", (address, key))
    if verdict is not None:
        conn.execute(
            "INSERT INTO verdicts (email, paper_key, verdict, changed) VALUES (?, ?, ?, ?)",
            (address, key, verdict, stamp),
        )
    return True


def voted_keys(conn: Connection) -> set[str]:
    """The papers any reader gave a verdict on."""
    return {str(key) for (key,) in conn.execute("SELECT DISTINCT paper_key FROM verdicts")}


def read_profiles(conn: Connection, addresses: Collection[str]) -> dict[str, tuple[str, bytes]]:
    """The kept profile (tag, float32 bytes) of each of ``addresses`` that has one."""
    wanted = set(addresses)
    rows = conn.execute("SELECT email, tag, weights FROM reader_profiles").fetchall()
    return {
        str(email): (str(tag), base64.b64decode(weights))
        for email, tag, weights in rows
        if email in wanted
    }


def write_profiles(conn: Connection, rows: Sequence[tuple[str, str, bytes]]) -> None:
    """Keep (or replace) these (address, tag, weights) profiles."""
    conn.executemany(
        "INSERT INTO reader_profiles (email, tag, weights) VALUES (?, ?, ?) "
        "ON CONFLICT (email) DO UPDATE SET tag = excluded.tag, weights = excluded.weights",
        [(email, tag, base64.b64encode(weights).decode("ascii")) for email, tag, weights in rows],
    )
