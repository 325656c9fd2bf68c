"""Choosing one profile's papers among many: bit masks of papers per term, ranking, Match values.

One :class:`Selection` is one ``match`` call: every paper gets one bit, every term id a mask of
the papers that contain it, so a subscriber's candidates are a few integer ORs and ANDs. The best
paper in base order has the highest bit, so ``int.bit_length`` finds the next pick. ``Match``
values are shared between subscribers who matched the same paper for the same reasons.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Sequence
from functools import partial, reduce
from operator import attrgetter, or_
from typing import TYPE_CHECKING

from digest.match import Ranking
from digest.match.text import FIELDS, NOT_IN_TEXT_RANK
from digest.match.vocabulary import Found
from digest.models import Match, Paper, Span

# what a term id names (``Interests.kind_of``): scored once per kind that matched
KEYWORD, AUTHOR, ORGANIZATION = 0, 1, 2

if TYPE_CHECKING:
    from digest.match.keywords import KeywordMatcher, Profile

TITLE_BONUS = 1000.0
NOTHING = Ranking([], 0)


def kinds_named(match: Match) -> int:
    """How many kinds of interest (keywords, authors, organisations) a keyword Match names."""
    return round(match.score - TITLE_BONUS if match.in_title else match.score)


def base_order(paper: Paper, position: int) -> tuple[bool, int, int, str, int]:
    """The sort key of the order ties fall back on: upvotes, then recency, then the key."""
    day = paper.published.toordinal() if paper.published is not None else 0
    return (paper.upvotes is None, -(paper.upvotes or 0), -day, paper.key, position)


class Selection:
    """One ``match`` call: the papers, one bit each, and a paper mask per id.

    The best paper in base order (most upvotes first) has the highest bit: ``int.bit_length``
    then finds the next pick, far cheaper than isolating the lowest bit of a long integer.
    Everything indexed per paper is indexed by its bit.
    """

    def __init__(self, interests: KeywordMatcher, papers: Sequence[Paper]) -> None:
        self._kids = interests.kids
        self._kind_of = interests.kind_of
        # Base order, a total one: most upvotes first (unknown last), the newest first, then the
        # key; the input's order never decides, so preview and run rank the same papers alike.
        order = sorted(range(len(papers)), key=lambda j: base_order(papers[j], j))
        self.papers = [papers[j] for j in reversed(order)]
        self.full = (1 << len(self.papers)) - 1
        self.pow2 = [1 << b for b in range(len(self.papers))]
        size = interests.vocabulary.size
        self.present = [0] * size
        self.title = [0] * size
        self.found: list[Found] = []
        self.present_kids: list[int] = []
        self.bit_of_key: dict[str, int] = {}
        kid_masks = interests.kid_masks
        for i, paper in enumerate(self.papers):
            bit = 1 << i
            self.bit_of_key[paper.key] = self.bit_of_key.get(paper.key, 0) | bit
            found = interests.vocabulary.scan(interests.texts.get(paper))
            self.found.append(found)
            for tid in found.present:
                self.present[tid] |= bit
            for tid in found.title:
                self.title[tid] |= bit
            self.present_kids.append(
                reduce(or_, (kid_masks.get(tid, 0) for tid in found.present), 0)
            )
        self._upvotes = [-(p.upvotes if p.upvotes is not None else -1) for p in self.papers[::-1]]
        self._up_masks: dict[int, int] = {}
        self._matches: list[dict[object, Match]] = [{} for _ in self.papers]
        self._keys = [paper.key for paper in self.papers]
        self._byte_keys: dict[int, tuple[str, ...]] = {}
        self._spans: dict[tuple[int, int, int], Span] = {}

    def skip_mask(self, keys: Collection[str]) -> int:
        """The bits of the papers whose key is in ``keys``."""
        mask = 0
        if len(keys) > len(self.bit_of_key):
            for key, bit in self.bit_of_key.items():
                if key in keys:
                    mask |= bit
        else:
            for key in keys:
                mask |= self.bit_of_key.get(key, 0)
        return mask

    def _at_least(self, upvotes: int) -> int:
        mask = self._up_masks.get(upvotes)
        if mask is None:
            # In base order (descending upvotes, unknown last) the qualifying papers are a prefix,
            # so they hold the highest bits.
            count = bisect_right(self._upvotes, -upvotes)
            mask = self._up_masks[upvotes] = ((1 << count) - 1) << (len(self.papers) - count)
        return mask

    def passing(self, profile: Profile, skip: int) -> int:
        """The bits of the papers that pass the profile's filters (require, exclude,
        min_upvotes) and are not in ``skip``, whatever its keywords."""
        candidates = self.full & ~skip
        for tid in profile.require:
            candidates &= self.present[tid]
        for tid in profile.exclude:
            candidates &= ~self.present[tid]
        if profile.min_upvotes is not None:
            candidates &= self._at_least(profile.min_upvotes)
        return candidates

    def select(self, profile: Profile, skip: int) -> Ranking:
        """The profile's ranking; ``skip``: bits of papers to leave out."""
        present = self.present
        # One mask per kind of interest (keywords, authors, organisations): synonyms among a
        # subscriber's keywords are one interest, so a paper naming two is not ranked higher.
        masks = [reduce(or_, map(present.__getitem__, group)) for group in profile.groups]
        candidates = reduce(or_, masks) if masks else self.full
        for tid in profile.require:
            candidates &= present[tid]
        for tid in profile.exclude:
            candidates &= ~present[tid]
        if profile.min_upvotes is not None:
            candidates &= self._at_least(profile.min_upvotes)
        if skip:
            candidates &= ~skip
        if not candidates:
            return NOTHING
        cap = profile.cap
        matched = candidates.bit_count()
        if masks and matched <= cap:
            # All of them go out: rank the Matches themselves; picks ascend, so the stable sort
            # keeps the upvote order among equal scores.
            out = self._matches_for(_bits(self.pow2, candidates, cap), profile)
            out.sort(key=_score, reverse=True)
            return Ranking(out, matched)
        picks = _pick(self.pow2, self.title, profile, masks, candidates, cap)
        below = candidates
        for bit in picks:
            below ^= self.pow2[bit]
        return Ranking(self._matches_for(picks, profile), matched, partial(self.keys_of, below))

    def keys_of(self, mask: int) -> tuple[str, ...]:
        """The keys of the papers whose bits are set, a byte of the mask at a time (the keys of
        each byte value at each position are worked out once per call)."""
        out: list[str] = []
        table = self._byte_keys
        for position, byte in enumerate(mask.to_bytes((mask.bit_length() + 7) // 8, "little")):
            if byte:
                keys = table.get(position << 8 | byte)
                if keys is None:
                    base = position * 8
                    keys = table[position << 8 | byte] = tuple(
                        self._keys[base + b] for b in range(8) if byte >> b & 1
                    )
                out += keys
        return tuple(out)

    def match(self, i: int, profile: Profile) -> Match:
        """The profile's Match of paper ``i`` (which its rules name)."""
        return self._matches_for([i], profile)[0]

    def _matches_for(self, picks: list[int], profile: Profile) -> list[Match]:
        matches = self._matches
        key = profile.fixed_key
        if key is not None:
            # At most one interest: every pick matched for the same reasons.
            found = [matches[i].get(key) for i in picks]
        else:
            kids, present_kids = profile.kids, self.present_kids
            if profile.require:
                require = profile.require
                found = [matches[i].get((kids & present_kids[i], require)) for i in picks]
            else:
                found = [matches[i].get(kids & present_kids[i]) for i in picks]
        if not all(found):  # a Match is always truthy; `None in` would call its __eq__
            return [m or self._match(i, profile) for i, m in zip(picks, found, strict=True)]
        return found  # type: ignore[return-value]

    def _match(self, i: int, profile: Profile) -> Match:
        kids = profile.kids & self.present_kids[i]
        key = profile.fixed_key
        if key is None:
            key = (kids, profile.require) if profile.require else kids
        match = self._matches[i][key] = self._build(i, kids, profile.require)
        return match

    def _build(self, i: int, kids: int, require: tuple[int, ...]) -> Match:
        found = self.found[i]
        unseen = (NOT_IN_TEXT_RANK, 0)
        matched = sorted(
            (self._kids[k] for k in range(kids.bit_length()) if kids >> k & 1),
            key=lambda pair: (found.first.get(pair[0], unseen), pair[1].casefold(), pair[1]),
        )
        ids = {tid for tid, _ in matched}
        in_title = not ids.isdisjoint(found.title)
        occurrences: list[tuple[int, int, int]] = []
        for tid in ids.union(require):
            occurrences += found.occurrences.get(tid, ())
        occurrences.sort()  # each term's list is already in order: a cheap merge of runs
        named = [(self._kind_of[tid], spelling) for tid, spelling in matched]
        return Match(
            paper=self.papers[i],
            keywords=tuple(dict.fromkeys(spelling for _, spelling in matched)),
            by_authors=tuple(dict.fromkeys(s for kind, s in named if kind == AUTHOR)),
            by_organizations=tuple(dict.fromkeys(s for kind, s in named if kind == ORGANIZATION)),
            in_title=in_title,
            score=(TITLE_BONUS if in_title else 0.0) + len({self._kind_of[t] for t in ids}),
            spans=self._merged(occurrences),
        )

    def _merged(self, occurrences: list[tuple[int, int, int]]) -> tuple[Span, ...]:
        """Sorted occurrences merged into non-overlapping spans, per field."""
        merged: list[tuple[int, int, int]] = []
        for rank, start, end in occurrences:
            if merged and merged[-1][0] == rank and start < merged[-1][2]:
                last = merged[-1]
                merged[-1] = (rank, last[1], max(last[2], end))
            else:
                merged.append((rank, start, end))
        spans = self._spans
        out: list[Span] = []
        for where in merged:
            span = spans.get(where)
            if span is None:
                span = spans[where] = Span(field=FIELDS[where[0]], start=where[1], end=where[2])
            out.append(span)
        return tuple(out)


def _pick(
    pow2: list[int],
    titles: list[int],
    profile: Profile,
    masks: list[int],
    candidates: int,
    cap: int,
) -> list[int]:
    """The bits of the best ``cap`` candidates, in ranking order."""
    if not masks:
        return _bits(pow2, candidates, cap)
    title = candidates & reduce(or_, map(titles.__getitem__, profile.text_select), 0)
    picks: list[int] = []
    # Title hits usually fill the cap on their own: the rest is only looked at when they do not.
    for part in (title, candidates & ~title):
        for group in _levels(masks, part) if len(masks) > 1 else (part,):
            while group:
                bit = group.bit_length() - 1
                picks.append(bit)
                if len(picks) == cap:
                    return picks
                group ^= pow2[bit]
    return picks


def _bits(pow2: list[int], mask: int, limit: int) -> list[int]:
    """The positions of the highest ``limit`` set bits of ``mask``, descending."""
    out: list[int] = []
    while mask:
        bit = mask.bit_length() - 1
        out.append(bit)
        if len(out) == limit:
            break
        mask ^= pow2[bit]
    return out


_score = attrgetter("score")


def _levels(masks: list[int], within: int) -> list[int]:
    """The papers of ``within`` split by how many masks they are in, most first."""
    # Papers in three or more of a subscriber's interests are rare: two counters in locals are
    # all most calls need.
    one = two = 0
    for mask in masks:
        mask &= within
        if mask:
            if two & mask:
                return _many_levels(masks, within)
            two |= one & mask
            one |= mask
    return [two, one & ~two] if two else [one]


def _many_levels(masks: list[int], within: int) -> list[int]:
    at_least = [0] * (len(masks) + 2)  # at_least[c]: papers in c or more of the masks
    top = 0  # the highest c with papers: few papers are in many masks, so few levels to update
    for mask in masks:
        mask &= within
        if mask:
            for c in range(top, 0, -1):
                at_least[c + 1] |= at_least[c] & mask
            at_least[1] |= mask
            if at_least[top + 1]:
                top += 1
    return [at_least[c] & ~at_least[c + 1] for c in range(top, 0, -1)]
