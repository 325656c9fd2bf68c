"""The papers tables, in SQL every backend runs: identity lookups, saving, records, pruning.

A paper is stored as its JSON record under its canonical key, with every title key it was seen
under in ``paper_titles``; :class:`PaperTable` answers the lookups
:class:`digest.identity.Resolver` makes, so the rule of which records are one paper stays in
:mod:`digest.identity`. The SQL uses ``?`` placeholders and nothing beyond what SQLite and
PostgreSQL share (a backend whose driver wants ``%s`` translates, see
:class:`digest.store.Connection`).

Old papers keep their identity forever (so a page read again in a year is still not new) but
lose their record once no subscriber can be offered them any more (:func:`prune_records`): the
row of a paper then weighs a few dozen bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pydantic

from digest.errors import StoreError
from digest.identity import Resolver
from digest.models import Paper
from digest.store import Connection

_PAPER_FIELDS = frozenset(Paper.model_fields)


class PaperTable:
    """The papers table as :mod:`digest.identity` looks papers up."""

    def __init__(self, conn: Connection, location: str) -> None:
        self._conn = conn
        self._location = location

    def has(self, key: str) -> bool:
        return (
            self._conn.execute("SELECT 1 FROM papers WHERE key = ?", (key,)).fetchone() is not None
        )

    def paper(self, key: str) -> Paper | None:
        row = self._conn.execute("SELECT record FROM papers WHERE key = ?", (key,)).fetchone()
        if not row or row[0] == PRUNED:
            return None
        return load_paper(self._location, key, row[0])

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


def save_papers(conn: Connection, resolver: Resolver, stamp: str) -> None:
    """Insert the new papers of ``resolver`` (first seen ``stamp``), update the known ones."""
    for entry in resolver.entries():
        paper = entry.paper
        record = paper.model_dump_json()
        if entry.new:
            conn.execute(
                "INSERT INTO papers (key, arxiv_id, title_key, first_seen, last_seen, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (paper.key, paper.arxiv_id, paper.title_key, stamp, stamp, record),
            )
        else:
            conn.execute(
                "UPDATE papers SET arxiv_id = COALESCE(arxiv_id, ?), title_key = ?, "
                "last_seen = CASE WHEN last_seen > ? THEN last_seen ELSE ? END, record = ? "
                "WHERE key = ?",
                (paper.arxiv_id, paper.title_key, stamp, stamp, record, paper.key),
            )
        conn.executemany(
            "INSERT INTO paper_titles (title_key, paper_key) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(title, paper.key) for title in sorted(entry.titles)],
        )


def recent_records(conn: Connection, since: str) -> list[tuple[str, str]]:
    """(key, record) of every paper first seen at or after ``since``, newest first."""
    rows = conn.execute(
        "SELECT key, record FROM papers WHERE first_seen >= ? ORDER BY first_seen DESC, key",
        (since,),
    ).fetchall()
    return [(str(key), str(record)) for key, record in rows]


IN_LIST_LIMIT = 500  # values per IN list: well under SQLite's and PostgreSQL's parameter limits


def in_chunks(values: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """``values`` in chunks an ``IN (...)`` list can take, each with its ``?, ?, ...`` marks."""
    for start in range(0, len(values), IN_LIST_LIMIT):
        chunk = list(values[start : start + IN_LIST_LIMIT])
        yield chunk, ", ".join("?" * len(chunk))


def records_of(conn: Connection, keys: Iterable[str]) -> dict[str, str]:
    """The records of ``keys`` (those still stored)."""
    found: dict[str, str] = {}
    for chunk, marks in in_chunks(sorted(set(keys))):
        rows = conn.execute(f"SELECT key, record FROM papers WHERE key IN ({marks})", chunk)
        found.update((str(key), str(record)) for key, record in rows.fetchall())
    return found


def seen_rows(conn: Connection, limit: int | None) -> list[tuple[Any, ...]]:
    """(key, arxiv_id, record, first_seen, sent_to) of the papers seen, newest first."""
    return list(
        conn.execute(
            "SELECT key, arxiv_id, record, first_seen, sent_to FROM papers "
            "ORDER BY first_seen DESC, key LIMIT ?",
            (limit if limit is not None else 2**62,),
        ).fetchall()
    )


def forget_paper(conn: Connection, key: str, arxiv: str | None) -> list[str]:
    """Delete the paper with this key or arXiv id and its titles; the keys deleted."""
    keys = [
        str(row[0])
        for row in conn.execute(
            "SELECT key FROM papers WHERE key = ? OR arxiv_id = ?", (key, arxiv)
        ).fetchall()
    ]
    for found in keys:
        conn.execute("DELETE FROM paper_titles WHERE paper_key = ?", (found,))
        conn.execute("DELETE FROM papers WHERE key = ?", (found,))
    return keys


def count_sent(conn: Connection, keys: Sequence[str]) -> None:
    """Add one subscriber to the sent count of each of ``keys`` (repeats count again)."""
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    # One statement per distinct count (a digest's keys all count once), not one per key: a
    # store that records each digest at once pays a round trip per statement.
    by_count: dict[int, list[str]] = {}
    for key, count in sorted(counts.items()):
        by_count.setdefault(count, []).append(key)
    for count, group in sorted(by_count.items()):
        for chunk, marks in in_chunks(group):
            conn.execute(
                f"UPDATE papers SET sent_to = sent_to + ? WHERE key IN ({marks})", (count, *chunk)
            )


def prune_records(conn: Connection, before: str, keep: Iterable[str]) -> int:
    """Drop the records of papers first seen before ``before`` except ``keep`` (owed papers):
    the key, ids and title keys stay, so identity survives; returns how many were emptied.

    The rows are deleted and written again rather than updated in place: a record shrunk where it
    stands leaves its page almost empty for good (SQLite does not merge such pages), so a year of
    papers would hold a page each; rewritten, the small rows pack together and the pages the big
    records used go back to the free list for tomorrow's papers.
    """
    kept = sorted(set(keep))
    conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS kept_keys (key TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM kept_keys")
    conn.executemany("INSERT INTO kept_keys (key) VALUES (?)", [(key,) for key in kept])
    rows = conn.execute(
        "SELECT key, arxiv_id, title_key, first_seen, last_seen, sent_to FROM papers "
        "WHERE first_seen < ? AND record != ? AND key NOT IN (SELECT key FROM kept_keys) "
        "ORDER BY key",
        (before, PRUNED),
    ).fetchall()
    conn.execute("DELETE FROM kept_keys")
    if not rows:
        return 0
    keys = [(row[0],) for row in rows]
    titles: list[tuple[Any, ...]] = []
    for (key,) in keys:
        titles.extend(
            conn.execute(
                "SELECT title_key, paper_key FROM paper_titles WHERE paper_key = ?", (key,)
            ).fetchall()
        )
    conn.executemany("DELETE FROM papers WHERE key = ?", keys)  # its titles go with it
    conn.executemany(
        "INSERT INTO papers (key, arxiv_id, title_key, first_seen, last_seen, sent_to, record) "
        f"VALUES (?, ?, ?, ?, ?, ?, '{PRUNED}')",
        [tuple(row) for row in rows],
    )
    conn.executemany("INSERT INTO paper_titles (title_key, paper_key) VALUES (?, ?)", titles)
    return len(rows)


PRUNED = "{}"


def load_paper(location: str, key: str, record: str) -> Paper:
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
            where=location,
            hint=f"remove it with `digest seen forget {key}`",
        ) from exc


def title_of(record: str) -> str:
    """The title in a stored record, or ``(pruned)`` for a paper kept only as an identity."""
    try:
        data = json.loads(record)
    except ValueError:
        return "(unreadable record)"
    title = data.get("title") if isinstance(data, dict) else None
    return str(title) if title else "(record pruned: only the identity is kept)"
