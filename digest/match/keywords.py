"""The keyword matcher: every subscriber's terms in one vocabulary, evaluated once per profile.

A subscriber's interests become a :class:`Profile` of term ids; subscribers with equal interests
share one profile, and each distinct (profile, papers already delivered) pair is evaluated once
(:mod:`digest.match.select` does the arithmetic). Terms that cannot match (no letters or digits)
and terms both wanted and excluded are configuration errors naming the subscriber.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from operator import or_

from digest.collector import cyclic_gc_paused
from digest.errors import ConfigError
from digest.match import MatcherContext, Ranking
from digest.match.select import AUTHOR, KEYWORD, ORGANIZATION, Selection
from digest.match.text import TextCache
from digest.match.vocabulary import Vocabulary
from digest.models import Match, Paper, Subscriber


@dataclass(frozen=True, slots=True)
class Profile:
    """One subscriber's interests as ids: what is evaluated once per distinct set of interests."""

    select: tuple[int, ...]  # keyword, author and organisation ids (distinct)
    groups: tuple[tuple[int, ...], ...]  # the ids of ``select`` by kind: one interest each
    text_select: tuple[int, ...]  # the keyword ids among them: those that can be in a title
    kids: int  # bit mask of (id, spelling) pairs, interned: what a Match reports
    require: tuple[int, ...]
    exclude: tuple[int, ...]
    min_upvotes: int | None
    cap: int
    fixed_key: int | tuple[int, tuple[int, ...]] | None  # the Match cache key if per-paper same


@dataclass(frozen=True)
class Filtered:
    """What :meth:`KeywordMatcher.rank_filtered` finds: the rankings, ``papers`` in a fixed
    order (bit ``i`` of a mask is paper ``i``), for each of the ``filters`` subscribers the mask
    of the papers that pass their filters and are not skipped, and ``named``: what the keyword
    rules of each ranked subscriber name, filters aside."""

    rankings: dict[str, Ranking]
    papers: list[Paper]
    passing: dict[str, int]
    named: _Named


class _Named:
    """The papers a subscriber's keywords, authors or organisations name, their filters aside:
    as a mask, worked out once per profile, and one paper's Match."""

    def __init__(self, run: Selection, profiles: list[Profile], subscribers: dict[str, int]):
        self._run = run
        self._profiles = profiles
        self._subscribers = subscribers
        self._masks: dict[int, int] = {}

    def mask(self, email: str) -> int:
        pid = self._subscribers[email]
        mask = self._masks.get(pid)
        if mask is None:
            named = map(self._run.present.__getitem__, self._profiles[pid].select)
            mask = self._masks[pid] = reduce(or_, named, 0)
        return mask

    def match(self, email: str, i: int) -> Match:
        """The keyword Match of paper ``i``, which the subscriber's rules name."""
        return self._run.match(i, self._profiles[self._subscribers[email]])


def filters_alone(sections: Iterable[Subscriber]) -> dict[str, Subscriber]:
    """Each section with its filters (require, exclude, min_upvotes) alone, for
    :class:`KeywordMatcher`'s ``filters``: readers with equal filters share one section."""
    shared: dict[tuple[object, ...], Subscriber] = {}
    alone: dict[str, Subscriber] = {}
    for section in sections:
        written = (section.require, section.exclude, section.min_upvotes)
        found = shared.get(written)
        if found is None:
            found = shared[written] = replace(
                section, keywords=(), authors=(), organizations=(), about=(), like=()
            )
        alone[section.email] = found
    return alone


def compile_interests(
    subscribers: Sequence[Subscriber], *, texts: TextCache | None = None
) -> KeywordMatcher:
    """All subscribers' interests in one shared vocabulary, ready to match any list of papers
    (tokenised into ``texts``, which another matcher of the same papers may share)."""
    return KeywordMatcher(subscribers, texts or TextCache())


def keyword_layer(subscribers: Sequence[Subscriber], context: MatcherContext) -> KeywordMatcher:
    """The registered ``keywords`` matcher (:class:`~digest.match.MatcherFactory`): always one."""
    return KeywordMatcher(subscribers, context.texts)


class KeywordMatcher:
    """Compiled keyword interests of a set of subscribers (see :mod:`digest.match` for the rules).

    Implements :class:`digest.match.Matcher`. ``texts``, ``vocabulary``, ``kids`` and
    ``kid_masks`` are shared with the :class:`~digest.match.select.Selection` of each call.
    """

    def __init__(
        self,
        subscribers: Sequence[Subscriber],
        texts: TextCache,
        *,
        filters: Mapping[str, Subscriber] | None = None,
    ) -> None:
        """``filters``: email -> a section whose require/exclude/min_upvotes filters alone are
        wanted (:meth:`rank_filtered`), for a matcher that picks by other means; subscribers
        with equal filters may share one section, compiled once."""
        self.texts = texts
        self.vocabulary = Vocabulary()
        self._sections: dict[str, Subscriber] = {}
        self._profile_ids: dict[Profile, int] = {}
        self._profiles: list[Profile] = []
        self._subscribers: dict[str, int] = {}
        self._kid_ids: dict[tuple[int, str], int] = {}
        self.kids: list[tuple[int, str]] = []
        self.kid_masks: dict[int, int] = {}  # id -> bit mask of its (id, spelling) pairs
        self.kind_of: dict[int, int] = {}  # id -> KEYWORD, AUTHOR or ORGANIZATION
        self._singles: dict[str, KeywordMatcher] = {}
        self._keywords: dict[str, tuple[int, str, int]] = {}  # raw -> id, spelling, kid bit
        # Subscribers who wrote the same interests share one profile, compiled once: a lab of
        # thousands has far fewer distinct interest lists than readers.
        by_interests: dict[tuple[object, ...], int] = {}
        for section in subscribers:
            if section.email in self._sections:
                raise ConfigError(
                    f"{section.email} is listed twice", where="subscribers", hint="merge them"
                )
            self._sections[section.email] = section
            written = (
                section.keywords, section.require, section.exclude, section.authors,
                section.organizations, section.min_upvotes, section.max_papers,
            )  # fmt: skip
            pid = by_interests.get(written)
            if pid is None:
                profile = self._profile(section)
                pid = self._profile_ids.setdefault(profile, len(self._profiles))
                if pid == len(self._profiles):
                    self._profiles.append(profile)
                by_interests[written] = pid
            self._subscribers[section.email] = pid
        self._ranked = sorted(set(self._subscribers.values()))
        self._filters: dict[str, int] = {}
        by_section: dict[int, int] = {}  # by id: the sections live as long as this loop
        for email, section in (filters or {}).items():
            pid = by_section.get(id(section))
            if pid is None:
                profile = self._profile(section)
                pid = self._profile_ids.setdefault(profile, len(self._profiles))
                if pid == len(self._profiles):
                    self._profiles.append(profile)
                by_section[id(section)] = pid
            self._filters[email] = pid

    @property
    def emails(self) -> list[str]:
        """The subscribers, in the order they were given."""
        return list(self._subscribers)

    def _profile(self, section: Subscriber) -> Profile:
        vocabulary = self.vocabulary
        select: dict[int, str] = {}
        kids = 0
        known = self._keywords
        for raw in section.keywords:
            # the same few hundred terms recur across thousands of interest sets: each is
            # looked up, checked and given its (id, spelling) bit once
            found = known.get(raw)
            if found is None:
                tid = self._checked(section, "keywords", raw, vocabulary.term(raw))
                self.kind_of[tid] = KEYWORD
                found = known[raw] = (tid, raw.strip(), 1 << self._kid(tid, raw.strip()))
            if found[0] not in select:
                select[found[0]] = found[1]
                kids |= found[2]
        text_select = tuple(sorted(select))
        groups = [text_select] if text_select else []
        named = (
            ((AUTHOR, "author", "authors", section.authors),
             (ORGANIZATION, "organization", "organizations", section.organizations))
            if section.authors or section.organizations
            else ()
        )  # fmt: skip
        for number, kind, field, names in named:
            if not names:
                continue
            group: set[int] = set()
            for raw in names:
                nid = self._checked(section, field, raw, vocabulary.name(kind, raw))
                if nid not in select:
                    select[nid] = raw.strip()
                    kids |= 1 << self._kid(nid, select[nid])
                self.kind_of[nid] = number
                group.add(nid)
            groups.append(tuple(sorted(group)))
        require = [
            self._checked(section, "require", r, vocabulary.term(r)) for r in section.require
        ]
        exclude = [
            self._checked(section, "exclude", x, vocabulary.term(x)) for x in section.exclude
        ]
        wanted = {*select, *require} if exclude else set()
        clash = [x for x in exclude if x in wanted]
        if clash:
            raw = section.exclude[exclude.index(clash[0])]
            raise ConfigError(
                f"{section.email}: {raw!r} is both wanted and excluded",
                where="subscribers",
                hint="keep it in only one list",
            )
        # Sorted: the order of ids never changes a result, so equal interest sets share a profile.
        require_ids = tuple(sorted(set(require)))
        return Profile(
            select=text_select if len(select) == len(text_select) else tuple(sorted(select)),
            groups=tuple(groups),
            text_select=text_select,
            kids=kids,
            require=require_ids,
            exclude=tuple(sorted(set(exclude))),
            min_upvotes=section.min_upvotes,
            cap=section.max_papers,
            fixed_key=None if len(select) > 1 else (kids, require_ids) if require_ids else kids,
        )

    @staticmethod
    def _checked(section: Subscriber, field: str, raw: str, tid: int | None) -> int:
        if tid is None:
            raise ConfigError(
                f"{section.email}: {field} entry {raw!r} has no letters or digits",
                where="subscribers",
                hint="remove it",
            )
        return tid

    def _kid(self, tid: int, spelling: str) -> int:
        kid = self._kid_ids.get((tid, spelling))
        if kid is None:
            kid = self._kid_ids[(tid, spelling)] = len(self.kids)
            self.kids.append((tid, spelling))
            self.kid_masks[tid] = self.kid_masks.get(tid, 0) | 1 << kid
        return kid

    def rank(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, Ranking]:
        """Each subscriber's ranking among ``papers``: best first, capped at their max_papers.

        Papers whose key is in ``skip[email]`` (already delivered) are dropped before the cap.
        Every subscriber is in the result; subscribers with equal interests and history share
        one :class:`Ranking`, so a caller must not change it.
        """
        with cyclic_gc_paused():
            # In a call of its own so the run is freed before the collector comes back to life.
            return self._rank(Selection(self, papers), skip)

    def _rank(
        self, run: Selection, skip: Mapping[str, Collection[str]] | None
    ) -> dict[str, Ranking]:
        profiles = self._profiles
        if not skip:
            picks = {pid: run.select(profiles[pid], 0) for pid in self._ranked}
            return {email: picks[pid] for email, pid in self._subscribers.items()}
        unskipped: list[Ranking | None] = [None] * len(profiles)
        memo: dict[tuple[int, int], Ranking] = {}
        masks: dict[int, tuple[Collection[str], int]] = {}  # by id: histories are often shared
        result: dict[str, Ranking] = {}
        for email, pid in self._subscribers.items():
            done = skip.get(email)
            mask = 0
            if done:
                known = masks.get(id(done))
                if known is None or known[0] is not done:
                    known = masks[id(done)] = (done, run.skip_mask(done))
                mask = known[1]
            if mask:
                picked = memo.get((pid, mask))
                if picked is None:
                    picked = memo[(pid, mask)] = run.select(profiles[pid], mask)
            else:
                picked = unskipped[pid]
                if picked is None:
                    picked = unskipped[pid] = run.select(profiles[pid], 0)
            result[email] = picked
        return result

    def rank_filtered(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> Filtered:
        """:meth:`rank`, plus what a matcher that also picks by other means needs of the
        ``filters`` subscribers and of the keyword rules (see :class:`Filtered`). One scan of
        the papers for all."""
        with cyclic_gc_paused():
            run = Selection(self, papers)
            ranked = self._rank(run, skip)
            memo: dict[tuple[int, int], int] = {}
            masks: dict[str, int] = {}
            for email, pid in self._filters.items():
                done = skip.get(email) if skip else None
                mask = run.skip_mask(done) if done else 0
                passing = memo.get((pid, mask))
                if passing is None:
                    passing = memo[(pid, mask)] = run.passing(self._profiles[pid], mask)
                masks[email] = passing
            named = _Named(run, self._profiles, self._subscribers)
            return Filtered(ranked, run.papers, masks, named)

    def rank_one(self, email: str, papers: Sequence[Paper]) -> Ranking:
        """One subscriber's ranking among ``papers`` (scanning only that subscriber's terms)."""
        single = self._singles.get(email)
        if single is None:
            section = self._sections.get(email)
            if section is None:
                raise KeyError(f"{email} is not a subscriber of these interests")
            single = self._singles[email] = KeywordMatcher([section], self.texts)
        return single.rank(papers)[email]

    def match(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, list[Match]]:
        """Each subscriber's matches (the ranking's ``matches``), for callers that need no more."""
        return {email: ranking.matches for email, ranking in self.rank(papers, skip=skip).items()}

    def match_one(self, email: str, papers: Sequence[Paper]) -> list[Match]:
        """One subscriber's matches among ``papers``."""
        return self.rank_one(email, papers).matches
