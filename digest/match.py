"""Subscribers' interests compiled once; matching papers to them, ranking, and highlight spans.

How a term matches (keywords, ``require``, ``exclude`` alike), case- and accent-insensitively,
over a paper's title, abstract, AI keywords and AI summary:

- text is cut into words (runs of letters and digits); a term matches whole words only, so "RAG"
  never matches "fragment";
- a phrase matches its words in a row separated by spaces, hyphens, slashes or line breaks
  ("mixture of experts" matches "Mixture-of-Experts", "GPT-4" matches "GPT 4"), never across
  other punctuation ("... large. Language models" is not "large language models");
- simple English plurals fold both ways ("agent"/"agents", "LLMs"/"LLM", "query"/"queries");
- a trailing ``*`` makes the last word a prefix ("quantiz*": "quantized", "quantization").

A paper is picked for a subscriber when it matches any keyword, any of ``authors`` (a name's
words in a row within one author's name: "LeCun" matches "Yann LeCun") or any of
``organizations`` (likewise within the paper's organisation); with none of these three set, every
paper is picked. Then every ``require`` term must match, no ``exclude`` term may, and with
``min_upvotes`` set a paper needs at least that many upvotes: a paper whose source does not say
(saved text pages often do not) is left out, since it cannot be shown to qualify.

Ranking: a keyword in the title first, then more distinct matched interests, then more upvotes
(unknown counts last), then the order the papers were given in; ``max_papers`` caps the list
after papers already delivered (``skip``) are dropped.

Speed: all subscribers' terms form one vocabulary; each paper is tokenised once and its n-grams
looked up in that vocabulary, giving a bit mask of papers per term. A subscriber is then a few
integer ORs and ANDs over those masks, and identical interests are evaluated once. ``Match``
values are shared between subscribers who matched the same paper for the same reasons.
"""

from __future__ import annotations

import gc
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from operator import attrgetter, or_
from typing import TYPE_CHECKING, Literal

from digest.errors import ConfigError
from digest.models import Match, Paper, Span

if TYPE_CHECKING:
    from digest.config import SubscriberSection

FieldName = Literal["title", "abstract", "ai_summary"]

# Words are runs of letters and digits; combining accents stay inside the word they decorate so
# decomposed text ("e" + U+0301) is not cut in two.
_WORD = re.compile(r"(?:[^\W_]|[\u0300-\u036f])+")
# What may separate the words of a phrase: "mixture-of-experts", a line break; not ". " or "''".
_JOINERS = " \t\r\n\u00a0-\u2010\u2011\u2012\u2013\u2014/"
_FIELDS: tuple[FieldName, ...] = ("title", "abstract", "ai_summary")
_AI_KEYWORDS_RANK = len(_FIELDS)
_NOT_IN_TEXT_RANK = _AI_KEYWORDS_RANK + 1
TITLE_BONUS = 1000.0
_TEXT_CACHE_LIMIT = 20_000


def plain(word: str) -> str:
    """``word`` case-folded and stripped of accents: how words and prefixes are compared."""
    folded = word.casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(word: str) -> str:
    """A plain word with a simple English plural ending removed: the form text is indexed under.

    Deliberately crude ("queries" -> "query", "agents" -> "agent", "boxes" -> "boxe"): keywords
    are registered under the folds of both their singular and plural forms, so a crude but
    consistent fold of the text is all that is needed.
    """
    if len(word) <= 3 or word[-1] != "s" or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1]


def _variants(word: str) -> frozenset[str]:
    """Every folded form under which text may spell ``word`` (singular or plural)."""
    forms = {word}
    if len(word) > 1 and word[-1] == "y" and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    forms.add(word + ("es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s"))
    if fold(word) != word:
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return frozenset(fold(form) for form in forms)


def _words(term: str) -> list[str]:
    return [plain(w) for w in _WORD.findall(term)]


def term_key(term: str) -> str:
    """What makes two written terms the same interest ("Agents*" and "agent" are)."""
    return " ".join(fold(w) for w in _words(term.strip().rstrip("*")))


@dataclass(frozen=True, slots=True)
class _Field:
    """One tokenised text field; ``name`` is None for AI keywords (matched, never highlighted)."""

    name: FieldName | None
    rank: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    plains: tuple[str, ...]
    keys: tuple[str, ...]
    joined: tuple[bool, ...]  # word p follows word p-1 with only spaces or hyphens between

    def phrase(self, first: int, last: int) -> bool:
        """Whether words ``first..last`` are one phrase: no other punctuation between them."""
        return all(self.joined[first + 1 : last + 1])


@dataclass(frozen=True, slots=True)
class _Text:
    """A paper cut into words once, whatever vocabulary later looks at it."""

    fields: tuple[_Field, ...]
    authors: tuple[tuple[str, ...], ...]
    organization: tuple[str, ...]


def _field(name: FieldName | None, rank: int, text: str) -> _Field:
    starts: list[int] = []
    ends: list[int] = []
    plains: list[str] = []
    joined: list[bool] = []
    for found in _WORD.finditer(text):
        joined.append(bool(ends) and not text[ends[-1] : found.start()].strip(_JOINERS))
        starts.append(found.start())
        ends.append(found.end())
        plains.append(plain(found.group()))
    keys = tuple(fold(w) for w in plains)
    return _Field(name, rank, tuple(starts), tuple(ends), tuple(plains), keys, tuple(joined))


def _tokenise(paper: Paper) -> _Text:
    fields = [_field(name, rank, getattr(paper, name) or "") for rank, name in enumerate(_FIELDS)]
    fields.extend(_field(None, _AI_KEYWORDS_RANK, keyword) for keyword in paper.ai_keywords)
    return _Text(
        fields=tuple(f for f in fields if f.keys),
        authors=tuple(tuple(_words(name)) for name in paper.authors),
        organization=tuple(_words(paper.organization or "")),
    )


class _TextCache:
    """Tokenised papers, shared by an ``Interests`` and the one-subscriber views it spawns."""

    def __init__(self) -> None:
        self._texts: dict[Paper, _Text] = {}

    def get(self, paper: Paper) -> _Text:
        text = self._texts.get(paper)
        if text is None:
            if len(self._texts) >= _TEXT_CACHE_LIMIT:
                self._texts.clear()
            text = self._texts[paper] = _tokenise(paper)
        return text


@dataclass(slots=True)
class _Found:
    """What one scan of one paper found: term and name ids, where the text terms occur."""

    present: set[int]
    title: set[int]
    occurrences: dict[int, list[tuple[int, int, int]]]  # id -> (field rank, start, end)
    first: dict[int, tuple[int, int]]


class _Vocabulary:
    """Every term and name of every subscriber, each with an id, and the lookup tables to scan."""

    def __init__(self) -> None:
        self.size = 0
        self._terms: dict[tuple[str, ...], int] = {}
        self._raw_terms: dict[str, int | None] = {}
        self._raw_names: dict[tuple[str, str], int] = {}
        self._exact1: dict[str, list[int]] = {}
        self._exact: dict[tuple[str, ...], list[int]] = {}
        self._starts: set[str] = set()
        self._lengths: list[int] = []
        self._prefix1: dict[str, list[int]] = {}
        self._stem_lengths1: list[int] = []
        self._head1 = 3
        self._heads1: set[str] = set()
        self._prefixes: dict[tuple[tuple[str, ...], str], list[int]] = {}
        self._prefix_starts: set[str] = set()
        self._prefix_shapes: list[tuple[int, int]] = []
        self._names: dict[str, dict[tuple[str, ...], int]] = {"author": {}, "organization": {}}
        self._name_lengths: dict[str, list[int]] = {"author": [], "organization": []}

    def term(self, raw: str) -> int | None:
        """The id of a keyword/require/exclude term, registered on first sight; None if wordless."""
        if raw in self._raw_terms:
            return self._raw_terms[raw]
        tid = self._raw_terms[raw] = self._register(raw)
        return tid

    def _register(self, raw: str) -> int | None:
        is_prefix = raw.strip().endswith("*")
        words = _words(raw.strip().rstrip("*"))
        if not words:
            return None
        identity = (
            ("*" if is_prefix else "="),
            *(fold(w) for w in words[:-1]),
            words[-1] if is_prefix else fold(words[-1]),
        )
        tid = self._terms.get(identity)
        if tid is None:
            tid = self._terms[identity] = self._new_id()
        lead = words[:-1] if is_prefix else words
        combos: list[tuple[str, ...]] = [()]
        for word in lead:
            combos = [(*c, v) for c in combos for v in sorted(_variants(word))]
        for combo in combos:
            if is_prefix:
                self._add_prefix(combo, words[-1], tid)
            else:
                self._add_exact(combo, tid)
        return tid

    def name(self, kind: str, raw: str) -> int | None:
        """The id of an author or organisation interest; None if wordless."""
        if (kind, raw) in self._raw_names:
            return self._raw_names[(kind, raw)]
        words = tuple(_words(raw))
        if not words:
            return None
        table = self._names[kind]
        nid = table.get(words)
        if nid is None:
            nid = table[words] = self._new_id()
            lengths = self._name_lengths[kind]
            if len(words) not in lengths:
                lengths.append(len(words))
        self._raw_names[(kind, raw)] = nid
        return nid

    def _new_id(self) -> int:
        self.size += 1
        return self.size - 1

    def _add_exact(self, combo: tuple[str, ...], tid: int) -> None:
        if len(combo) == 1:
            ids = self._exact1.setdefault(combo[0], [])
        else:
            ids = self._exact.setdefault(combo, [])
            self._starts.add(combo[0])
            if len(combo) not in self._lengths:
                self._lengths.append(len(combo))
                self._lengths.sort()
        if tid not in ids:
            ids.append(tid)

    def _add_prefix(self, lead: tuple[str, ...], stem: str, tid: int) -> None:
        if lead:
            ids = self._prefixes.setdefault((lead, stem), [])
            self._prefix_starts.add(lead[0])
            shape = (len(lead), len(stem))
            if shape not in self._prefix_shapes:
                self._prefix_shapes.append(shape)
        else:
            ids = self._prefix1.setdefault(stem, [])
            if len(stem) not in self._stem_lengths1:
                self._stem_lengths1.append(len(stem))
                self._stem_lengths1.sort()
            # Cheap first test of a word against all one-word prefixes: their common head length.
            if len(stem) < self._head1:
                self._head1 = len(stem)
                self._heads1 = {s[: self._head1] for s in self._prefix1}
            else:
                self._heads1.add(stem[: self._head1])
        if tid not in ids:
            ids.append(tid)

    def scan(self, text: _Text) -> _Found:
        """Every term and name of the vocabulary that ``text`` contains, and where."""
        found = _Found(set(), set(), {}, {})
        for field in text.fields:
            self._scan_field(field, found)
        for kind, words_list in (("author", text.authors), ("organization", (text.organization,))):
            table = self._names[kind]
            if not table:
                continue
            lengths = self._name_lengths[kind]
            for words in words_list:
                for p in range(len(words)):
                    for n in lengths:
                        nid = table.get(words[p : p + n]) if p + n <= len(words) else None
                        if nid is not None:
                            found.present.add(nid)
        return found

    def _scan_field(self, field: _Field, found: _Found) -> None:
        keys, plains, n = field.keys, field.plains, len(field.keys)
        exact1, exact, starts, lengths = self._exact1, self._exact, self._starts, self._lengths
        prefix1, heads1, head1 = self._prefix1, self._heads1, self._head1
        for p in range(n):
            key = keys[p]
            ids = exact1.get(key)
            if ids:
                self._hit(field, found, ids, p, p)
            if key in starts:
                for length in lengths:
                    if p + length > n:
                        break
                    ids = exact.get(keys[p : p + length])
                    if ids and field.phrase(p, p + length - 1):
                        self._hit(field, found, ids, p, p + length - 1)
            if prefix1:
                word = plains[p]
                if word[:head1] in heads1:
                    for length in self._stem_lengths1:
                        if length > len(word):
                            break
                        ids = prefix1.get(word[:length])
                        if ids:
                            self._hit(field, found, ids, p, p)
            if key in self._prefix_starts:
                for lead, length in self._prefix_shapes:
                    if p + lead < n and len(plains[p + lead]) >= length:
                        ids = self._prefixes.get((keys[p : p + lead], plains[p + lead][:length]))
                        if ids and field.phrase(p, p + lead):
                            self._hit(field, found, ids, p, p + lead)

    @staticmethod
    def _hit(field: _Field, found: _Found, ids: list[int], first: int, last: int) -> None:
        where = (field.rank, field.starts[first])
        for tid in ids:
            found.present.add(tid)
            if field.rank == 0:
                found.title.add(tid)
            if tid not in found.first or where < found.first[tid]:
                found.first[tid] = where
            if field.name is not None:
                found.occurrences.setdefault(tid, []).append(
                    (field.rank, field.starts[first], field.ends[last])
                )


@dataclass(frozen=True, slots=True)
class _Profile:
    """One subscriber's interests as ids: what is evaluated once per distinct set of interests."""

    select: tuple[int, ...]  # keyword, author and organisation ids (distinct)
    text_select: tuple[int, ...]  # the keyword ids among them: those that can be in a title
    kids: int  # bit mask of (id, spelling) pairs, interned: what a Match reports
    require: tuple[int, ...]
    exclude: tuple[int, ...]
    min_upvotes: int | None
    cap: int
    fixed_key: int | tuple[int, tuple[int, ...]] | None  # the Match cache key if per-paper same


def compile_interests(subscribers: Sequence[SubscriberSection]) -> Interests:
    """All subscribers' interests in one shared vocabulary, ready to match any list of papers."""
    return Interests(subscribers, _TextCache())


class Interests:
    """Compiled interests of a set of subscribers (see the module docstring for the rules)."""

    def __init__(self, subscribers: Sequence[SubscriberSection], texts: _TextCache) -> None:
        self._texts = texts
        self._vocabulary = _Vocabulary()
        self._sections: dict[str, SubscriberSection] = {}
        self._profile_ids: dict[_Profile, int] = {}
        self._profiles: list[_Profile] = []
        self._subscribers: dict[str, int] = {}
        self._kid_ids: dict[tuple[int, str], int] = {}
        self._kids: list[tuple[int, str]] = []
        self._kid_masks: dict[int, int] = {}  # id -> bit mask of its (id, spelling) pairs
        self._singles: dict[str, Interests] = {}
        for section in subscribers:
            if section.email in self._sections:
                raise ConfigError(
                    f"{section.email} is listed twice", where="subscribers", hint="merge them"
                )
            self._sections[section.email] = section
            profile = self._profile(section)
            pid = self._profile_ids.setdefault(profile, len(self._profiles))
            if pid == len(self._profiles):
                self._profiles.append(profile)
            self._subscribers[section.email] = pid

    @property
    def emails(self) -> list[str]:
        """The subscribers, in the order they were given."""
        return list(self._subscribers)

    def _profile(self, section: SubscriberSection) -> _Profile:
        vocabulary = self._vocabulary
        select: dict[int, str] = {}
        text_select: list[int] = []
        for raw in section.keywords:
            tid = self._checked(section, "keywords", raw, vocabulary.term(raw))
            if tid not in select:
                select[tid] = raw.strip()
                text_select.append(tid)
        for kind, field, names in (
            ("author", "authors", section.authors),
            ("organization", "organizations", section.organizations),
        ):
            for raw in names:
                nid = self._checked(section, field, raw, vocabulary.name(kind, raw))
                select.setdefault(nid, raw.strip())
        require = [
            self._checked(section, "require", r, vocabulary.term(r)) for r in section.require
        ]
        exclude = [
            self._checked(section, "exclude", x, vocabulary.term(x)) for x in section.exclude
        ]
        clash = [
            x for x, raw in zip(exclude, section.exclude, strict=True) if x in (*select, *require)
        ]
        if clash:
            raw = section.exclude[exclude.index(clash[0])]
            raise ConfigError(
                f"{section.email}: {raw!r} is both wanted and excluded",
                where="subscribers",
                hint="keep it in only one list",
            )
        kids = reduce(or_, (1 << self._kid(i, spelling) for i, spelling in select.items()), 0)
        # Sorted: the order of ids never changes a result, so equal interest sets share a profile.
        require_ids = tuple(sorted(set(require)))
        return _Profile(
            select=tuple(sorted(select)),
            text_select=tuple(sorted(text_select)),
            kids=kids,
            require=require_ids,
            exclude=tuple(sorted(set(exclude))),
            min_upvotes=section.min_upvotes,
            cap=section.max_papers,
            fixed_key=None if len(select) > 1 else (kids, require_ids) if require_ids else kids,
        )

    @staticmethod
    def _checked(section: SubscriberSection, field: str, raw: str, tid: int | None) -> int:
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
            kid = self._kid_ids[(tid, spelling)] = len(self._kids)
            self._kids.append((tid, spelling))
            self._kid_masks[tid] = self._kid_masks.get(tid, 0) | 1 << kid
        return kid

    def match(
        self,
        papers: Sequence[Paper],
        *,
        skip: Mapping[str, Collection[str]] | None = None,
        capped: bool = True,
    ) -> dict[str, list[Match]]:
        """Each subscriber's matches among ``papers``, best first, capped at their max_papers.

        Papers whose key is in ``skip[email]`` (already delivered) are dropped before the cap.
        Every subscriber is in the result, possibly with an empty list. ``capped=False`` returns
        every match in ranking order, for a caller that records what fell below the cap.
        """
        with _cyclic_gc_paused():
            # In a call of its own so the run is freed before the collector comes back to life.
            return self._match(papers, skip, capped)

    def _match(
        self, papers: Sequence[Paper], skip: Mapping[str, Collection[str]] | None, capped: bool
    ) -> dict[str, list[Match]]:
        run = _Run(self, papers, capped=capped)
        profiles = self._profiles
        if not skip:
            picks = [run.select(profile, 0) for profile in profiles]
            return {email: picks[pid][:] for email, pid in self._subscribers.items()}
        unskipped: list[list[Match] | None] = [None] * len(profiles)
        memo: dict[tuple[int, int], list[Match]] = {}
        result: dict[str, list[Match]] = {}
        for email, pid in self._subscribers.items():
            done = skip.get(email)
            mask = run.skip_mask(done) if done else 0
            if mask:
                picked = memo.get((pid, mask))
                if picked is None:
                    picked = memo[(pid, mask)] = run.select(profiles[pid], mask)
            else:
                picked = unskipped[pid]
                if picked is None:
                    picked = unskipped[pid] = run.select(profiles[pid], 0)
            result[email] = picked[:]
        return result

    def match_one(self, email: str, papers: Sequence[Paper], *, capped: bool = True) -> list[Match]:
        """One subscriber's matches among ``papers`` (scanning only that subscriber's terms)."""
        single = self._singles.get(email)
        if single is None:
            section = self._sections.get(email)
            if section is None:
                raise KeyError(f"{email} is not a subscriber of these interests")
            single = self._singles[email] = Interests([section], self._texts)
        return single.match(papers, capped=capped)[email]


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, restoring its previous state after.

    Matching many subscribers allocates millions of small acyclic objects (masks, keys, result
    lists); each allocation burst would make the collector walk everything alive, config
    included, many times over (about a quarter of the run time in bench/match.py). Nothing here
    creates reference cycles, so pausing it loses nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Run:
    """One ``match`` call: the papers, one bit each, and a paper mask per id.

    The best paper in base order (most upvotes first) has the highest bit: ``int.bit_length``
    then finds the next pick, far cheaper than isolating the lowest bit of a long integer.
    Everything indexed per paper is indexed by its bit.
    """

    def __init__(self, interests: Interests, papers: Sequence[Paper], *, capped: bool) -> None:
        self._capped = capped
        self._kids = interests._kids
        order = sorted(
            range(len(papers)),
            key=lambda j: (papers[j].upvotes is None, -(papers[j].upvotes or 0), j),
        )
        self.papers = [papers[j] for j in reversed(order)]
        self.full = (1 << len(self.papers)) - 1
        self.pow2 = [1 << b for b in range(len(self.papers))]
        size = interests._vocabulary.size
        self.present = [0] * size
        self.title = [0] * size
        self.found: list[_Found] = []
        self.present_kids: list[int] = []
        self.bit_of_key: dict[str, int] = {}
        kid_masks = interests._kid_masks
        for i, paper in enumerate(self.papers):
            bit = 1 << i
            self.bit_of_key[paper.key] = self.bit_of_key.get(paper.key, 0) | bit
            found = interests._vocabulary.scan(interests._texts.get(paper))
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

    def select(self, profile: _Profile, skip: int) -> list[Match]:
        """The profile's matches, best first, capped; ``skip``: bits of papers to leave out."""
        present = self.present
        masks = list(map(present.__getitem__, profile.select))
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
            return []
        cap = profile.cap if self._capped else len(self.papers)
        if masks and candidates.bit_count() <= cap:
            # All of them go out: rank the Matches themselves; picks ascend, so the stable sort
            # keeps the upvote order among equal scores.
            out = self._matches_for(_bits(self.pow2, candidates, cap), profile)
            out.sort(key=_score, reverse=True)
            return out
        picks = _pick(self.pow2, self.title, profile, masks, candidates, cap)
        return self._matches_for(picks, profile)

    def _matches_for(self, picks: list[int], profile: _Profile) -> list[Match]:
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

    def _match(self, i: int, profile: _Profile) -> Match:
        kids = profile.kids & self.present_kids[i]
        key = profile.fixed_key
        if key is None:
            key = (kids, profile.require) if profile.require else kids
        match = self._matches[i][key] = self._build(i, kids, profile.require)
        return match

    def _build(self, i: int, kids: int, require: tuple[int, ...]) -> Match:
        found = self.found[i]
        unseen = (_NOT_IN_TEXT_RANK, 0)
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
        return Match(
            paper=self.papers[i],
            keywords=tuple(dict.fromkeys(spelling for _, spelling in matched)),
            in_title=in_title,
            score=(TITLE_BONUS if in_title else 0.0) + len(ids),
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
                span = spans[where] = Span(field=_FIELDS[where[0]], start=where[1], end=where[2])
            out.append(span)
        return tuple(out)


def _pick(
    pow2: list[int],
    titles: list[int],
    profile: _Profile,
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
