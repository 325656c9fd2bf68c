"""The papers table of the SQLite store: identity lookups, saving resolved papers, records.

A paper is stored as its JSON record under its canonical key, with every title key it was seen
under in ``paper_titles``; :class:`PaperTable` answers the lookups :class:`digest.identity.Resolver`
makes, so the rule of which records are one paper stays in :mod:`digest.identity`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pydantic

from digest.errors import StoreError
from digest.identity import Resolver
from digest.models import Paper

_PAPER_FIELDS = frozenset(Paper.model_fields)


class PaperTable:
    """The papers table as :mod:`digest.identity` looks papers up."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path

    def paper(self, key: str) -> Paper | None:
        row = self._conn.execute("SELECT record FROM papers WHERE key = ?", (key,)).fetchone()
        return load_paper(self._path, key, row[0]) if row else None

    def key_of_arxiv(self, arxiv: str) -> str | None:
        row = self._conn.execute("SELECT key FROM papers WHERE arxiv_id = ?", (arxiv,)).fetchone()
        return str(row[0]) if row else None

    def keys_of_title(self, title: str) -> list[tuple[str, str | None]]:
        rows = self._conn.execute(
            "SELECT p.key, p.arxiv_id FROM paper_titles AS t JOIN papers AS p "
            "ON p.key = t.paper_key WHERE t.title_key = ? ORDER BY p.first_seen, p.key",
            (title,),
        ).fetchall()
        return [(str(key), arxiv) for key, arxiv in rows]


def save_papers(conn: sqlite3.Connection, resolver: Resolver, stamp: str) -> None:
    """Insert the new papers of ``resolver`` (first seen ``stamp``), update the known ones."""
    for entry in resolver.entries():
        paper = entry.paper
        if entry.new:
            conn.execute(
                "INSERT INTO papers (key, arxiv_id, title_key, first_seen, last_seen, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (paper.key, paper.arxiv_id, paper.title_key, stamp, stamp, paper.model_dump_json()),
            )
        else:
            conn.execute(
                "UPDATE papers SET arxiv_id = COALESCE(arxiv_id, ?), title_key = ?, "
                "last_seen = MAX(last_seen, ?), record = ? WHERE key = ?",
                (paper.arxiv_id, paper.title_key, stamp, paper.model_dump_json(), paper.key),
            )
        conn.executemany(
            "INSERT OR IGNORE INTO paper_titles (title_key, paper_key) VALUES (?, ?)",
            [(title, paper.key) for title in sorted(entry.titles)],
        )


def load_paper(path: Path, key: str, record: str) -> Paper:
    """A stored JSON record as a Paper (fields a later version dropped are ignored)."""
    try:
        data = json.loads(record)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        data = {name: value for name, value in data.items() if name in _PAPER_FIELDS}
        data["key"] = key
        return Paper.model_validate(data)
    except (ValueError, pydantic.ValidationError) as exc:
        raise StoreError(
            f"the stored record of paper {key} cannot be read: {exc}",
            where=str(path),
            hint=f"remove it with `digest seen forget {key}`",
        ) from exc
