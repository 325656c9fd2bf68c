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
from digest.match.select import kinds_named
from digest.models import Match

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

KEYWORD_IN_TITLE, KEYWORD_ELSEWHERE = 1.0, 0.8

# A paper close in meaning: (rank key, bit of the paper in the call, Match, evidence, key).
Close = tuple[int, int, Match, float, str]


@dataclass(frozen=True)
class Wants:
    """One subscriber's meaning interests: columns of the interest matrix, and the cut-off."""

    columns: tuple[int, ...]
    thresholds: tuple[float, ...]  # per column: min_similarity, higher for a liked paper
    cap: int


@dataclass(frozen=True)
class CloseSet:
    """The papers close in meaning to one subscriber's interests that pass their filters: best
    first, and as a bit mask over the call's papers."""

    entries: list[Close]
    mask: int


NOTHING_CLOSE = CloseSet([], 0)


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


def close_set(picks: list[Close], mask: int) -> CloseSet:
    """The close papers of ``picks`` (best first) among the papers of ``mask``."""
    entries = [pick for pick in picks if mask >> pick[1] & 1]
    if not entries:
        return NOTHING_CLOSE
    bits = 0
    for pick in entries:
        bits |= 1 << pick[1]
    return CloseSet(entries, bits)


class Blend:
    """The merges of one ``rank`` call: what its subscribers share (the keys each keyword
    ranking shows, the Matches that say how close they also are) is worked out once."""

    def __init__(self, place: Mapping[str, int]) -> None:
        self._place = place  # each paper's place in the base order (ties)
        self._shown: dict[int, frozenset[str]] = {}
        self._copies: dict[tuple[int, int], tuple[int, Match]] = {}  # with their rank keys
        self._keys: dict[int, int] = {}  # each keyword Match's rank key, by its id

    def merge(
        self,
        cap: int,
        by_keyword: Ranking,
        close: CloseSet,
        named: int,
        keyword_match: Callable[[int], Match] | None,
    ) -> Ranking:
        """The keyword ranking and the papers close in meaning as one ranking, at most ``cap``
        (the formula of :mod:`digest.match.semantic`). ``named``: the mask of the papers the
        keyword rules name, filters aside; ``keyword_match(bit)``: the keyword Match of one of
        them (None: the subscriber has no keyword rules). A paper both named and close keeps
        its keywords and says how close."""
        matches = by_keyword.matches
        # Rankings live as long as the call (they are in its result), so their ids name them.
        shown = self._shown.get(id(by_keyword))
        if shown is None:
            shown = self._shown[id(by_keyword)] = frozenset(m.paper.key for m in matches)
        closer: dict[str, Close] = {}
        below: list[Close] = []  # named by the keyword rules, below their cap, and close
        fresh: list[Close] = []  # found by meaning alone
        raised = False  # a keyword match's evidence may rise with its closeness
        for entry in close.entries:
            if entry[4] in shown:
                closer[entry[4]] = entry
                raised = raised or entry[3] > KEYWORD_ELSEWHERE
            elif keyword_match and named >> entry[1] & 1:
                if entry[3] > KEYWORD_ELSEWHERE:  # else it stays below the keyword matches
                    below.append(entry)
            elif len(fresh) < cap:
                fresh.append(entry)
        matched = by_keyword.matched + (close.mask & ~named).bit_count()
        out: list[Match]
        if not raised and not below and (not fresh or fresh[0][3] <= KEYWORD_ELSEWHERE):
            # Every keyword match keeps its evidence, at least that of the best paper found by
            # meaning, and names more kinds of interest (those name none): the keyword ranking
            # in its order, then the papers found by meaning.
            out = matches
            if closer:
                out = [
                    self._ranked(m, closer[m.paper.key])[1] if m.paper.key in closer else m
                    for m in matches
                ]
            if fresh and len(out) < cap:
                out = out + [entry[2] for entry in fresh[: cap - len(out)]]
            return Ranking(out, matched, lambda: _rest(by_keyword, close, out))
        entries = [(entry[0], entry[2]) for entry in fresh]
        for match in matches:
            near = closer.get(match.paper.key)
            entries.append(self._ranked(match, near) if near else (self._key(match), match))
        if keyword_match:
            entries += [self._ranked(keyword_match(entry[1]), entry) for entry in below]
        entries.sort(key=itemgetter(0))
        out = [match for _, match in entries[:cap]]
        return Ranking(out, matched, lambda: _rest(by_keyword, close, out))

    def _key(self, match: Match) -> int:
        """A keyword match's rank key (worked out once: many rankings share a Match)."""
        key = self._keys.get(id(match))
        if key is None:
            # Matches live as long as the call (in the rankings), so their ids stay theirs.
            evidence = KEYWORD_IN_TITLE if match.in_title else KEYWORD_ELSEWHERE
            key = rank_key(evidence, kinds_named(match), self._place[match.paper.key])
            self._keys[id(match)] = key
        return key

    def _ranked(self, match: Match, near: Close) -> tuple[int, Match]:
        """A keyword match that is close too: its rank key, and a Match saying how close, its
        evidence the stronger of the two."""
        ranked = self._copies.get((id(match), id(near[2])))
        if ranked is None:
            # Both Matches live as long as the call (in the rankings and the close sets), so
            # their ids stay theirs, and subscribers who share both share the copy.
            evidence = max(KEYWORD_IN_TITLE if match.in_title else KEYWORD_ELSEWHERE, near[3])
            copy = match.model_copy(
                update={
                    "close_to": near[2].close_to, "similarity": near[2].similarity,
                    "score": evidence,
                }
            )  # fmt: skip
            key = rank_key(evidence, kinds_named(match), self._place[match.paper.key])
            ranked = self._copies[(id(match), id(near[2]))] = (key, copy)
        return ranked


def _rest(by_keyword: Ranking, close: CloseSet, out: list[Match]) -> tuple[str, ...]:
    """The keys ranked below the cap: keyword matches and close papers not shown."""
    shown = {m.paper.key for m in out}
    left = {key for key in by_keyword.passed_over if key not in shown}
    left.update(entry[4] for entry in close.entries if entry[4] not in shown)
    left.update(m.paper.key for m in by_keyword.matches if m.paper.key not in shown)
    return tuple(left)


def rank_key(evidence: float, kinds: int, place: int) -> int:
    """One integer ordering by evidence (two decimals, highest first), then the kinds of
    interest named (most first; a paper found by meaning alone names none), then base order."""
    return ((100 - round(evidence * 100)) << 2 | (3 - min(kinds, 3))) << 32 | place
