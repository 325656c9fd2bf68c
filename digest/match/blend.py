"""Keyword rankings and closeness in meaning blended into one ranking (the formula of
:mod:`digest.match.semantic`): which papers are close to a subscriber's interests, and how they
take their places among the keyword matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING

from digest.match import Ranking
from digest.models import Match

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

KEYWORD_IN_TITLE, KEYWORD_ELSEWHERE = 1.0, 0.8


@dataclass(frozen=True)
class Wants:
    """One subscriber's meaning interests: columns of the interest matrix, and the cut-off."""

    columns: tuple[int, ...]
    thresholds: tuple[float, ...]  # per column: min_similarity, higher for a liked paper
    cap: int
    has_keywords: bool
    liked: frozenset[str]  # the liked papers' keys: read already, never offered


class Above:
    """For every interest column, the papers at least ``threshold`` close to it: one pass over
    the whole matrix, each column's list built only when a subscriber asks for it."""

    def __init__(self, similarity: npt.NDArray[np.float32], threshold: float) -> None:
        import numpy as np

        columns, rows = np.nonzero((similarity >= threshold).T)
        self._starts: list[int] = np.searchsorted(
            columns, np.arange(similarity.shape[1] + 1)
        ).tolist()
        self._rows: list[int] = rows.tolist()
        self._margins: list[float] = (similarity[rows, columns] - threshold).tolist()

    def get(self, column: int) -> list[tuple[int, int, float]]:
        start, end = self._starts[column], self._starts[column + 1]
        return [(row, 0, m) for row, m in zip(self._rows[start:end], self._margins[start:end])]  # noqa: B905


def merge(
    wants: Wants,
    by_keyword: Ranking,
    close: list[tuple[int, Match, float, str]],
    order: Mapping[str, int],
    named: Callable[[str], bool] | None,
    summaries: dict[int, tuple[frozenset[str], float]],
) -> Ranking:
    """The keyword ranking and the papers close in meaning (best first, with their rank keys)
    as one ranking (the formula of the module docstring); ``order``: each paper's place in the
    base order (ties); ``named``: whether the keyword rules name a paper. A paper both named and
    close keeps its keywords and says how close."""
    keys, floor = _summary(by_keyword, summaries)
    fresh: list[tuple[int, Match, float, str]] = []
    closer: dict[str, tuple[str | None, float | None, float]] = {}
    extra = 0
    for entry in close:
        key = entry[3]
        if key in keys:
            match = entry[1]
            closer[key] = (match.close_to, match.similarity, entry[2])
            continue
        fresh.append(entry)
        if named is None or not named(key):
            extra += 1  # not among the keyword matches (shown or left out by the cap)
    matched = by_keyword.matched + extra
    cap, liked = wants.cap, wants.liked
    if not closer and not liked and len(keys) >= cap and (not fresh or fresh[0][2] < floor):
        # Nothing close enough outranks the keyword matches that fill the email.
        left = tuple(entry[3] for entry in fresh)
        return Ranking(by_keyword.matches, matched, lambda: (*by_keyword.passed_over, *left))
    entries: list[tuple[int, Match]] = []
    for match in by_keyword.matches:
        key = match.paper.key
        if liked and key in liked:
            continue
        evidence = KEYWORD_IN_TITLE if match.in_title else KEYWORD_ELSEWHERE
        if key in closer:
            close_to, similarity, meaning = closer[key]
            evidence = max(evidence, meaning)
            match = _closer_copy(match, close_to, similarity, evidence)
        entries.append((rank_key(evidence, order[key]), match))
    entries += [(rank, match) for rank, match, _, _ in fresh[:cap]]  # the rest cannot make it
    entries.sort(key=itemgetter(0))
    out = [match for _, match in entries[:cap]]
    keep = {m.paper.key for m in out}

    def rest() -> tuple[str, ...]:
        left = {m.paper.key for _, m in entries[cap:]}
        left.update(entry[3] for entry in fresh[cap:])
        left.update(key for key in by_keyword.passed_over if key not in keep)
        return tuple(left - liked)

    return Ranking(out, matched, rest)


def rank_key(evidence: float, place: int) -> int:
    """One integer ordering by evidence (two decimals, highest first), then base order."""
    return (100 - round(evidence * 100)) << 32 | place


def _summary(
    ranking: Ranking, summaries: dict[int, tuple[frozenset[str], float]]
) -> tuple[frozenset[str], float]:
    """The keys a keyword ranking shows and the least evidence among them, worked out once per
    ranking in a call (subscribers with equal interests share one)."""
    known = summaries.get(id(ranking))
    if known is None:
        keys = frozenset(m.paper.key for m in ranking.matches)
        titled = all(m.in_title for m in ranking.matches)
        known = summaries[id(ranking)] = (keys, KEYWORD_IN_TITLE if titled else KEYWORD_ELSEWHERE)
    return known


def _closer_copy(
    match: Match, close_to: str | None, similarity: float | None, score: float
) -> Match:
    """``match`` saying how close it also is."""
    return Match.model_construct(
        paper=match.paper, keywords=match.keywords, in_title=match.in_title, spans=match.spans,
        close_to=close_to, similarity=similarity, score=score,
    )  # fmt: skip
