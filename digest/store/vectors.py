"""What interests in plain words keep in the store: paper embeddings, so each paper is embedded
once however many runs see it, and the liked papers fetched for comparison.

One embedding row per paper: a tag saying what made it (the model, and a digest of the text
embedded, so a paper whose summary arrived later is embedded again) and the float32 vector as
base64 text (a column type both backends share). A row goes when its paper's record is pruned.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Collection, Sequence

from digest.models import Paper
from digest.store import Connection, SqlDatabase
from digest.store.claims import iso
from digest.store.papers import in_chunks, load_paper


def read_vectors(conn: Connection, keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
    """The stored tag and vector of each of ``keys`` that has one."""
    found: dict[str, tuple[str, bytes]] = {}
    for chunk, marks in in_chunks(list(keys)):
        rows = conn.execute(
            f"SELECT key, model, vector FROM paper_vectors WHERE key IN ({marks})", chunk
        ).fetchall()
        found.update((str(key), (str(tag), base64.b64decode(vector))) for key, tag, vector in rows)
    return found


def write_vectors(conn: Connection, rows: Sequence[tuple[str, str, bytes]]) -> None:
    """Store (or replace) the (key, tag, vector) of these papers."""
    conn.executemany(
        "INSERT INTO paper_vectors (key, model, vector) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET model = excluded.model, vector = excluded.vector",
        [(key, tag, base64.b64encode(vector).decode("ascii")) for key, tag, vector in rows],
    )


def read_recent_vectors(conn: Connection, model: str, limit: int) -> list[tuple[str, bytes]]:
    """The (key, vector) of the ``limit`` most recently seen papers embedded by ``model``."""
    prefix = f"{model} "  # a tag is the model, then a digest of the text
    rows = conn.execute(
        "SELECT v.key, v.vector FROM paper_vectors v JOIN papers p ON p.key = v.key "
        "WHERE substr(v.model, 1, ?) = ? ORDER BY p.first_seen DESC, v.key LIMIT ?",
        (len(prefix), prefix, limit),
    ).fetchall()
    return [(str(key), base64.b64decode(vector)) for key, vector in rows]


def prune_vectors(conn: Connection) -> None:
    """Drop the vectors of papers whose record is gone (the bundled sample papers' stay: they
    stand for the collection on a store's first days, digest.match.closeness)."""
    conn.execute(
        "DELETE FROM paper_vectors WHERE key NOT LIKE 'sample:%' "
        "AND key NOT IN (SELECT key FROM papers WHERE record != '{}')"
    )


def read_liked(conn: Connection, ids: Collection[str]) -> dict[str, str]:
    """The kept JSON records of the liked papers ``ids`` that were fetched."""
    found: dict[str, str] = {}
    for chunk, marks in in_chunks(list(ids)):
        rows = conn.execute(
            f"SELECT arxiv_id, record FROM liked_papers WHERE arxiv_id IN ({marks})", chunk
        ).fetchall()
        found.update((str(arxiv_id), str(record)) for arxiv_id, record in rows)
    return found


def write_liked(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Keep (arxiv_id, JSON record, when fetched) rows of liked papers."""
    conn.executemany(
        "INSERT INTO liked_papers (arxiv_id, record, fetched) VALUES (?, ?, ?) "
        "ON CONFLICT (arxiv_id) DO UPDATE SET record = excluded.record, fetched = excluded.fetched",
        rows,
    )


class InterestStorage:
    """The store methods of this module, for a store with ``_db``, ``readonly``, ``location``."""

    _db: SqlDatabase
    readonly: bool
    location: str

    def paper_vectors(self, keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """The stored embeddings of ``keys``: the tag of what made each, and its bytes."""
        return self._db.read("read paper vectors", lambda conn: read_vectors(conn, keys))

    def recent_paper_vectors(self, model: str, limit: int) -> list[tuple[str, bytes]]:
        """The (key, vector) of the ``limit`` most recently seen papers embedded by ``model``."""
        return self._db.read(
            "read recent paper vectors", lambda conn: read_recent_vectors(conn, model, limit)
        )

    def save_paper_vectors(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep these embeddings (a preview's read-only store keeps none)."""
        if rows and not self.readonly:
            self._db.write("save paper vectors", lambda conn: write_vectors(conn, rows))

    def liked_papers(self, ids: Collection[str]) -> dict[str, Paper]:
        """The liked papers of ``ids`` fetched earlier."""
        rows = self._db.read("read liked papers", lambda conn: read_liked(conn, ids))
        return {key: load_paper(self.location, key, record) for key, record in rows.items()}

    def save_liked_papers(self, papers: Sequence[Paper], now: dt.datetime) -> None:
        """Keep these fetched liked papers (a read-only store keeps none)."""
        rows = [(p.arxiv_id, p.model_dump_json(), iso(now)) for p in papers if p.arxiv_id]
        if rows and not self.readonly:
            self._db.write("keep liked papers", lambda conn: write_liked(conn, rows))
