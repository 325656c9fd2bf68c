"""Paper embeddings kept in the store, so each paper is embedded once however many runs see it.

One row per paper: a tag saying what made it (the model, and a digest of the text embedded, so
a paper whose summary arrived later is embedded again) and the float32 vector as base64 text (a
column type both backends share). A row goes when its paper's record is pruned.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Sequence

from digest.store import Connection

_CHUNK = 500  # keys per IN list: well under SQLite's and PostgreSQL's parameter limits


def read_vectors(conn: Connection, keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
    """The stored tag and vector of each of ``keys`` that has one."""
    wanted = list(keys)
    found: dict[str, tuple[str, bytes]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
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


def prune_vectors(conn: Connection) -> None:
    """Drop the vectors of papers whose record is gone."""
    conn.execute(
        "DELETE FROM paper_vectors WHERE key NOT IN (SELECT key FROM papers WHERE record != '{}')"
    )
