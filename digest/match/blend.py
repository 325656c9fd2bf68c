"""Keyword rankings and closeness in meaning blended into one ranking (the formula of
:mod:`digest.match.semantic`): which papers are close to a subscriber's interests, and how they
take their places among the keyword matches.
"""

from __future__ import annotations

from collections.abc import Mapping
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
class CloseSet:
    """The papers close in meaning to one subscriber's interests that pass their filters: best
    first as (rank key, Match, evidence, key), by key, and as a bit mask over the call's papers."""

    entries: list[tuple[int, Match, float, str]]
    by_key: dict[str, tuple[int, Match, float, str]]
    mask: int


NOTHING_CLOSE = CloseSet([], {}, 0)


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
    close: CloseSet,
    order: Mapping[str, int],
    named: int,
    summaries: dict[int, tuple[frozenset[str], float]],
    copies: dict[tuple[int, int], Match],
) -> Ranking:
    """The keyword ranking and the papers close in meaning as one ranking (the formula of the
    module docstring of :mod:`digest.match.semantic`); ``order``: each paper's place in the base
    order (ties); ``named``: the mask of the papers the keyword rules name. A paper both named
    and close keeps its keywords and says how close. Costs the cap, not the close papers."""
    keys, floor = _summary(by_keyword, summaries)
    cap, liked = wants.cap, wants.liked
    closer = {key: close.by_key[key] for key in keys if key in close.by_key}
    extra = (close.mask & ~named).bit_count()  # close, and not among the keyword matches at all
    matched = by_keyword.matched + extra
    fresh: list[tuple[int, Match, float, str]] = []
    for entry in close.entries:
        if entry[3] not in closer:
            fresh.append(entry)
            if len(fresh) == cap:
                break
    if not closer and not liked and len(keys) >= cap and (not fresh or fresh[0][2] < floor):
        # Nothing close enough outranks the keyword matches that fill the email.
        return Ranking(by_keyword.matches, matched, lambda: _rest(by_keyword, close, keys))
    entries: list[tuple[int, Match]] = []
    for match in by_keyword.matches:
        key = match.paper.key
        if liked and key in liked:
            continue
        evidence = KEYWORD_IN_TITLE if match.in_title else KEYWORD_ELSEWHERE
        near = closer.get(key)
        if near is not None:
            evidence = max(evidence, near[2])
            # Matches are shared by subscribers, and so are these copies: both Matches live as
            # long as the call (in the rankings and the close sets), so their ids stay theirs.
            copy = copies.get((id(match), id(near[1])))
            if copy is None:
                copy = _closer_copy(match, near[1].close_to, near[1].similarity, evidence)
                copies[(id(match), id(near[1]))] = copy
            match = copy
        entries.append((rank_key(evidence, order[key]), match))
    entries += [(rank, match) for rank, match, _, _ in fresh]  # the rest cannot make it
    entries.sort(key=itemgetter(0))
    out = [match for _, match in entries[:cap]]
    shown = frozenset(m.paper.key for m in out)
    return Ranking(out, matched, lambda: _rest(by_keyword, close, shown | liked))


def _rest(by_keyword: Ranking, close: CloseSet, shown: frozenset[str]) -> tuple[str, ...]:
    """The keys ranked below the cap: keyword matches and close papers not shown."""
    left = {key for key in by_keyword.passed_over if key not in shown}
    left.update(entry[3] for entry in close.entries if entry[3] not in shown)
    left.update(m.paper.key for m in by_keyword.matches if m.paper.key not in shown)
    return tuple(left)


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
