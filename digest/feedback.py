"""Readers' verdicts on papers, "more like this" or "fewer like this": recorded from the links in
their email (``digest serve``) or ``digest feedback``, for a stored paper, and listed back.

A verdict names a paper of the store by its key or any version of its arXiv id; one on a paper
the store does not hold is refused, and nothing is stored. What the verdicts change is
:mod:`digest.match.profile`'s business.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from digest.errors import UsageError
from digest.identity import arxiv_id
from digest.models import Paper
from digest.store import ReaderRecords, Store, address_of
from digest.store.verdicts import LESS, MORE

VERDICTS = {"more": MORE, "less": LESS}
WORDS = {MORE: "more like this", LESS: "fewer like this"}


@dataclass(frozen=True)
class Verdict:
    """One reader's verdict on one stored paper."""

    paper: Paper
    verdict: int  # MORE or LESS

    @property
    def word(self) -> str:
        return WORDS[self.verdict]


def paper_key(raw: str) -> str:
    """The store key a reader's reference to a paper names (an arXiv id loses its version)."""
    return arxiv_id(raw) or raw.strip()


def stored_paper(store: Store, raw: str) -> Paper:
    """The stored paper ``raw`` names; a UsageError when the store does not hold its record."""
    key = paper_key(raw)
    found = store.papers_by_key({key}).get(key)
    if found is None:
        raise UsageError(
            f"no paper {raw!r} in the store",
            where=store.location,
            hint="give the arXiv id of a paper a digest listed (see `digest seen list`)",
        )
    return found


def record(
    store: ReaderRecords, email: str, paper: Paper, verdict: int | None, now: dt.datetime
) -> bool:
    """Record ``email``'s ``verdict`` on ``paper`` (None clears it); whether anything changed."""
    return store.record_verdict(email, paper.key, verdict, now)


def verdicts_of(store: Store, email: str) -> list[Verdict]:
    """The verdicts of ``email``, oldest first, on the papers the store still holds."""
    given = store.verdicts([email]).get(address_of(email), {})
    papers = store.papers_by_key(set(given))
    return [Verdict(papers[key], value) for key, value in given.items() if key in papers]
