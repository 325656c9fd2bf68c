"""Readers' verdicts on papers ("more like this", "fewer like this") and the profiles fitted from
them, in SQL every backend runs.

A verdict is +1 or -1 per reader and paper; a later one replaces it and clearing drops it. The
papers voted on keep their records (and so their vectors) when the store prunes old papers, so
a reader's profile (:mod:`digest.match.profile`) keeps learning from them. Each reader holding
verdicts has a revision that every change raises; a profile is kept with a tag naming what it
was fitted from, that revision included, so a run tells a kept profile is current from one row
per reader, and fits it again only when the tag changes. A reader whose last verdict goes
loses their revision and their profile with it.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable, Mapping

from digest.store import Connection, KeptProfile
from digest.store.papers import in_chunks

MORE, LESS = 1, -1
_ORDER = " ORDER BY email, changed, paper_key"


def verdicts(conn: Connection, addresses: Collection[str] | None) -> dict[str, dict[str, int]]:
    """Each reader's verdicts by paper key, oldest first (of ``addresses``, or every reader)."""
    query = "SELECT email, paper_key, verdict FROM verdicts"
    if addresses is None:
        rows = conn.execute(query + _ORDER).fetchall()
    else:
        rows = []
        for chunk, marks in in_chunks(sorted(set(addresses))):
            rows += conn.execute(f"{query} WHERE email IN ({marks}){_ORDER}", chunk).fetchall()
    found: dict[str, dict[str, int]] = {}
    for email, key, verdict in rows:
        found.setdefault(str(email), {})[str(key)] = int(verdict)
    return found


def verdicts_on(conn: Connection, keys: Collection[str]) -> dict[str, set[str]]:
    """Which of the papers ``keys`` each reader gave a verdict on, by address."""
    found: dict[str, set[str]] = {}
    for chunk, marks in in_chunks(sorted(set(keys))):
        rows = conn.execute(
            f"SELECT email, paper_key FROM verdicts WHERE paper_key IN ({marks})", chunk
        )
        for email, key in rows.fetchall():
            found.setdefault(str(email), set()).add(str(key))
    return found


def revisions(conn: Connection, addresses: Collection[str]) -> dict[str, int]:
    """The revision of each of ``addresses`` that holds verdicts."""
    wanted = set(addresses)
    # one scan of a row per reader: cheaper than IN lists when most readers are asked
    rows = conn.execute("SELECT email, revision FROM verdict_revisions").fetchall()
    return {str(email): int(revision) for email, revision in rows if email in wanted}


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
    revised(conn, [address])
    return True


def judges_of(conn: Connection, key: str, arxiv: str | None) -> list[str]:
    """The readers who gave a verdict on the paper with this key or arXiv id."""
    rows = conn.execute(
        "SELECT DISTINCT v.email FROM verdicts v JOIN papers p ON p.key = v.paper_key "
        "WHERE p.key = ? OR p.arxiv_id = ? ORDER BY v.email",
        (key, arxiv),
    )
    return [str(email) for (email,) in rows.fetchall()]


def revised(conn: Connection, addresses: Iterable[str]) -> None:
    """After a change to the verdicts of ``addresses``: raise the revision of each who still
    holds verdicts; drop the revision and profile of each who holds none."""
    for address in addresses:
        (held,) = conn.execute(
            "SELECT COUNT(*) FROM verdicts WHERE email = ?", (address,)
        ).fetchone()
        if held:
            conn.execute(
                "INSERT INTO verdict_revisions (email, revision) VALUES (?, 1) "
                "ON CONFLICT (email) DO UPDATE SET revision = verdict_revisions.revision + 1",
                (address,),
            )
        else:
            conn.execute("DELETE FROM verdict_revisions WHERE email = ?", (address,))
            conn.execute("DELETE FROM reader_profiles WHERE email = ?", (address,))


def voted_keys(conn: Connection) -> set[str]:
    """The papers any reader gave a verdict on."""
    return {str(key) for (key,) in conn.execute("SELECT DISTINCT paper_key FROM verdicts")}


def read_profiles(conn: Connection, addresses: Collection[str]) -> dict[str, KeptProfile]:
    """The kept profile of each of ``addresses`` that has one."""
    wanted = set(addresses)
    rows = conn.execute("SELECT email, tag, weights, marked FROM reader_profiles").fetchall()
    return {
        str(email): KeptProfile(str(tag), base64.b64decode(weights), _keys(str(marked)))
        for email, tag, weights, marked in rows
        if email in wanted
    }


def _keys(marked: str) -> tuple[str, ...]:
    return tuple(marked.split("\n")) if marked else ()


def _text(marked: tuple[str, ...]) -> str:
    return "\n".join(marked)  # a paper key holds no line break


def write_profiles(conn: Connection, profiles: Mapping[str, KeptProfile]) -> None:
    """Keep (or replace) these profiles, by address."""
    conn.executemany(
        "INSERT INTO reader_profiles (email, tag, weights, marked) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (email) DO UPDATE SET tag = excluded.tag, weights = excluded.weights, "
        "marked = excluded.marked",
        [
            (email, kept.tag, base64.b64encode(kept.weights).decode("ascii"), _text(kept.marked))
            for email, kept in profiles.items()
        ],
    )
