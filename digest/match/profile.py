"""A profile per reader, learnt from their verdicts ("more like this", "fewer like this"): a
logistic regression over paper embeddings that re-ranks the reader's candidates and decides the
cut (a :class:`digest.match.Matcher` around the keyword or semantic matcher).

The model, per reader with at least one verdict::

    p(paper) = sigmoid(w . vector(paper) + b)        z(paper) = (w . vector + b - mean) / spread

fitted (L2-regularised, Newton's method) on the papers marked "more" and the reader's own
interests (each ``about`` text, liked paper, and the keywords written as one text) as the
positive side, against the papers marked "fewer" and the papers of the day the profile was
fitted (weak negatives: what all papers share), the two sides weighing the same; ``mean`` and
``spread`` are those of the scores of that day's papers, so ``z`` says how far a paper stands
out from a day's papers on one scale for every reader. A profile is kept in the store with a
tag of what it was fitted from (the model, the revision of the reader's verdicts, their
interests) and the papers marked "more" its why-lines name, and fitted again only when the tag
changes: a run reads one revision and one profile per judged reader and the verdicts on the
day's papers, never every verdict, then pays one matrix product and one sort for all judged
readers; a digest rebuilt elsewhere ranks the same.

The cut: a paper the reader's rules picked (keywords, authors, organisations, ``about``,
``like``) stays unless the profile is sure against it (``p < KEEP_FROM``); any other paper
passing the reader's filters (``require``, ``exclude``, ``min_upvotes``) comes in when the
profile wants it and it stands out (``p >= ADD_CHANCE`` and ``z >= ADD_FROM``), its why-line
naming the marked paper it is most like. They rank by ``z`` (a rule's match counting
``RULE_BONUS`` more); ``max_papers`` caps the list. Papers the reader gave a verdict on were
shown already and are never offered again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Protocol

from digest.collector import cyclic_gc_paused
from digest.match import Matcher, MatcherContext, Ranking, embedding
from digest.match.embedding import Embedder, interest_text, paper_text
from digest.match.keywords import KeywordMatcher, filters_alone
from digest.match.semantic import PaperVectors, embedded
from digest.match.text import TextCache
from digest.models import Match, Paper, Subscriber
from digest.store import KeptProfile

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
    Ints = npt.NDArray[np.intp]
    Bools = npt.NDArray[np.bool_]
    Floats = npt.NDArray[np.float64]

FIT_VERSION = "2"  # part of every tag: a change of the formula fits every profile again
KEEP_FROM = 0.2  # a rule's match is dropped only when the profile is this sure against it
# A paper outside the rules comes in when the profile wants it and it stands out this far from
# the papers of the day the profile was fitted (a standard score: one scale for every reader).
ADD_CHANCE = 0.5
ADD_FROM = 1.5
RULE_BONUS = 1.0  # what a rule's match counts over the profile's standing alone, when ranking
L2 = 0.3  # the regulariser: with few verdicts the profile stays close to the interests
BACKGROUND_SHARE = 0.5  # of the negative side's weight, when the reader also marked "fewer"
BACKGROUND_LIMIT = 400  # papers of the day standing for "what all papers share"
WIDEST = 500  # the most matches a ranking may hold (Subscriber.max_papers' bound)
_LABEL = 70


class FeedbackStore(PaperVectors, Protocol):
    """What profiles read and keep in the store."""

    def verdicts(self, emails: Collection[str] | None = None) -> dict[str, dict[str, int]]:
        """Readers' verdicts (+1, -1) by address, then paper key, oldest first."""

    def verdicts_on(self, keys: Collection[str]) -> dict[str, set[str]]:
        """Which of the papers ``keys`` each reader gave a verdict on, by address."""

    def verdict_revisions(self, emails: Collection[str]) -> dict[str, int]:
        """The revision of the verdicts of each reader who holds any, by address."""

    def papers_by_key(self, keys: Collection[str]) -> dict[str, Paper]:
        """The stored records of ``keys``."""

    def reader_profiles(self, emails: Collection[str]) -> dict[str, KeptProfile]:
        """The kept profile of each reader that has one, by address."""

    def save_reader_profiles(self, profiles: Mapping[str, KeptProfile]) -> None:
        """Keep these profiles, by address."""


@dataclass(frozen=True)
class Verdicts:
    """One reader's verdicts, with the papers they name (those the store still holds), oldest
    first."""

    more: tuple[Paper, ...]
    less: tuple[Paper, ...]


def prior_texts(subscriber: Subscriber, liked: Mapping[str, Paper]) -> list[str]:
    """The reader's own interests as texts: the positive side before any verdict."""
    texts = [interest_text(about) for about in subscriber.about]
    texts += [paper_text(paper) for raw in subscriber.like if (paper := liked.get(raw.strip()))]
    terms = [*subscriber.keywords, *subscriber.organizations]
    if terms:
        texts.append(", ".join(terms))
    return texts


def profile_tag(model: str, revision: int, prior: Sequence[str]) -> str:
    """What a profile is fitted from: the model, the revision of the reader's verdicts and
    their interests."""
    parts = [FIT_VERSION, model, str(revision), *prior]
    return hashlib.sha1("\n".join(parts).encode("utf-8")).hexdigest()[:20]


def read_verdicts(store: FeedbackStore, emails: Collection[str]) -> dict[str, Verdicts]:
    """The verdicts of the readers of ``emails``, by address, with the papers judged."""
    given = store.verdicts(emails)
    papers = store.papers_by_key({key for found in given.values() for key in found})
    judged: dict[str, Verdicts] = {}
    for address, found in given.items():
        more = tuple(papers[k] for k, v in found.items() if v > 0 and k in papers)
        less = tuple(papers[k] for k, v in found.items() if v < 0 and k in papers)
        if more or less:
            judged[address] = Verdicts(more, less)
    return judged


def fit(
    positive: Vectors,
    negative: Vectors,
    background: Vectors,
    *,
    l2: float = L2,
    background_share: float = BACKGROUND_SHARE,
    start: Vectors | None = None,
    steps: int = 20,
) -> Vectors:
    """The weights (bias last) of a logistic regression of ``positive`` against ``negative``
    and ``background`` (unjudged papers: weak negatives, ``background_share`` of that side),
    the two sides weighing the same; from ``start`` (the reader's profile before their latest
    verdicts, which a few steps correct), else from zero. In float32: twice as fast, and the
    weights need no more."""
    import numpy as np

    sides = [
        (positive, 1.0, 1.0),
        (negative, 0.0, 1.0 - background_share if len(background) else 1.0),
        (background, 0.0, background_share if len(negative) else 1.0),
    ]
    sides = [(rows, label, share) for rows, label, share in sides if len(rows)]
    x = np.vstack([rows for rows, _, _ in sides]).astype(np.float32)
    x = np.hstack([x, np.ones((len(x), 1), dtype=np.float32)])
    y = np.concatenate([np.full(len(rows), label, dtype=np.float32) for rows, label, _ in sides])
    # each side half the weight (the negative one split between verdicts and background)
    weight = np.concatenate(
        [np.full(len(rows), 0.5 * share / len(rows)) for rows, _, share in sides]
    )
    weight = (weight * len(x)).astype(np.float32)
    penalty = np.full(x.shape[1], l2, dtype=np.float32)
    penalty[-1] = 0.0  # the bias is not pulled towards zero
    fresh = start is None or start.shape != (x.shape[1],)  # another model's: start afresh
    w = np.zeros(x.shape[1], dtype=np.float32) if fresh else np.array(start, dtype=np.float32)
    for _ in range(steps):  # Newton's method: about 7 steps from zero, 3 from a kept profile
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (weight * (p - y)) + penalty * w
        hessian = (x.T * (weight * p * (1 - p))) @ x + np.diag(penalty + 1e-6)
        step = np.linalg.solve(hessian, gradient)
        w = w - step
        if float(np.abs(step).max()) < 1e-4:
            break
    weights: Vectors = w.astype(np.float32)
    return weights


def standardised(weights: Vectors, background: Vectors) -> Vectors:
    """``weights`` with the mean and spread of its scores over ``background`` appended, so
    :func:`standing` reads a paper against the papers of that day."""
    import numpy as np

    scores = background @ weights[:-1] + weights[-1] if len(background) else np.zeros(1)
    spread = float(scores.std()) or 1.0
    result: Vectors = np.concatenate([weights, [float(scores.mean()), spread]]).astype(np.float32)
    return result


def scores(profiles: Vectors, vectors: Vectors) -> tuple[Vectors, Vectors]:
    """For each row of ``vectors`` (papers) and each of ``profiles`` (readers, one per row): the
    probability that the reader wants the paper, and how far it stands out from the papers of
    the day the profile was fitted (a standard score, to two decimals); papers x readers."""
    import numpy as np

    raw = vectors @ profiles[:, :-3].T + profiles[:, -3]
    chance: Vectors = (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
    standing: Vectors = np.round((raw - profiles[:, -2]) / profiles[:, -1], 2).astype(np.float32)
    return chance, standing


class ProfileMatcher:
    """The inner matcher's rankings, re-ranked and cut by each judged reader's profile."""

    def __init__(
        self,
        subscribers: Sequence[Subscriber],
        inner: Matcher,
        revisions: Mapping[str, int],
        embedder: Embedder,
        store: FeedbackStore,
        *,
        liked: Mapping[str, Paper] | None = None,
        texts: TextCache | None = None,
    ) -> None:
        self._inner = inner
        self._embedder = embedder
        self._store = store
        self._vectors: dict[str, Vectors] = {}
        self._sections = {s.email: s for s in subscribers}
        # the readers holding verdicts (by email), with the revision of those verdicts
        self._revisions = {
            s.email: revisions[s.address] for s in subscribers if s.address in revisions
        }
        self._priors = {e: prior_texts(self._sections[e], liked or {}) for e in self._revisions}
        self._weights: dict[str, Vectors] = {}
        self._marked: dict[str, tuple[str, ...]] = {}  # the keys each marked "more", oldest first
        self._marked_papers: dict[str, Paper] = {}
        self._earlier: dict[str, Vectors] = {}  # profiles fitted before the latest verdicts
        self._unfit: set[str] = set()  # readers whose verdicts tell nothing apart: rules alone
        # the judged readers' filters alone (require, exclude, min_upvotes), as bit masks
        judged = (self._sections[email] for email in self._revisions)
        self._filters = KeywordMatcher([], texts or TextCache(), filters=filters_alone(judged))
        self._load_kept()

    @property
    def emails(self) -> list[str]:
        """The subscribers, in the order they were given."""
        return self._inner.emails

    def _tag(self, email: str) -> str:
        return profile_tag(self._embedder.name, self._revisions[email], self._priors[email])

    def _load_kept(self) -> None:
        import numpy as np

        kept = self._store.reader_profiles(list(self._revisions))
        for email in self._revisions:
            found = kept.get(self._sections[email].address)
            if found is None:
                continue
            weights = np.frombuffer(found.weights, dtype="<f4")
            if found.tag == self._tag(email):
                self._weights[email] = weights
                self._marked[email] = found.marked
            else:
                self._earlier[email] = weights[:-2]  # where the new fit starts

    def _fit_missing(self, background: Sequence[Paper]) -> None:
        """Fit the profiles not kept (or kept for other verdicts), and keep them."""
        missing = [e for e in self._revisions if e not in self._weights and e not in self._unfit]
        if not missing:
            return
        import numpy as np

        judged = read_verdicts(self._store, missing)
        marked: dict[str, Paper] = {}
        for found in judged.values():
            marked.update((p.key, p) for p in (*found.more, *found.less))
        vectors = self._matrix(list(marked.values())) if marked else None
        row = {key: i for i, key in enumerate(marked)}
        shared = self._matrix(list(background)[:BACKGROUND_LIMIT])
        texts = list(dict.fromkeys(t for email in missing for t in self._priors[email]))
        prior_rows = dict(zip(texts, self._embedder.embed(texts), strict=True)) if texts else {}
        fitted: dict[str, KeptProfile] = {}
        for email in missing:
            address = self._sections[email].address
            given = judged.get(address)
            positive = [prior_rows[text] for text in self._priors[email]]
            if given is None or vectors is None or not (positive or given.more):
                self._unfit.add(email)  # no verdict on a paper still held, or no positive side
                continue
            positive = [vectors[row[p.key]] for p in given.more] + positive
            keys = {p.key for p in (*given.more, *given.less)}
            negative = [vectors[row[p.key]] for p in given.less]
            unjudged = [v for p, v in zip(background, shared, strict=False) if p.key not in keys]
            if not (negative or unjudged):
                self._unfit.add(email)
                continue
            dim = vectors.shape[1]
            others = np.array(unjudged).reshape(-1, dim)
            weights = fit(
                np.array(positive), np.array(negative).reshape(-1, dim), others,
                start=self._earlier.get(email),
            )  # fmt: skip
            self._weights[email] = standardised(
                weights, others if len(others) else np.array(positive)
            )
            self._marked[email] = tuple(p.key for p in given.more)
            self._marked_papers.update((p.key, p) for p in given.more)
            fitted[address] = KeptProfile(
                self._tag(email), self._weights[email].astype("<f4").tobytes(), self._marked[email]
            )
        self._store.save_reader_profiles(fitted)

    def _matrix(self, papers: Sequence[Paper]) -> Vectors:
        return embedded(papers, self._embedder, self._vectors, self._store)

    def rank(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, Ranking]:
        """Each subscriber's ranking: the inner matcher's, or, for a judged reader, the one
        their profile makes of it (see the module docstring)."""
        skip = skip or {}
        judged_skip = _Overlay(skip, self._judged_among(papers, skip))
        with cyclic_gc_paused():  # as in the keyword matcher: many small acyclic objects
            inner = self._inner.rank(papers, skip=judged_skip)
            return self._profiled(papers, inner, judged_skip, list(self._revisions))

    def _judged_among(
        self, papers: Sequence[Paper], skip: Mapping[str, Collection[str]]
    ) -> dict[str, Collection[str]]:
        """``skip`` of the judged readers who gave a verdict on any of ``papers``, with those
        papers added: they were shown already."""
        on = self._store.verdicts_on({paper.key for paper in papers})
        out: dict[str, Collection[str]] = {}
        for email in self._revisions if on else ():
            keys = on.get(self._sections[email].address)
            if keys:
                out[email] = keys.union(skip.get(email, ()))
        return out

    def rank_one(self, email: str, papers: Sequence[Paper]) -> Ranking:
        """One subscriber's ranking among ``papers``."""
        if email not in self._sections:
            raise KeyError(f"{email} is not a subscriber of these interests")
        if email not in self._revisions:
            return self._inner.rank_one(email, papers)
        keys = self._judged_among(papers, {}).get(email, ())
        kept = [p for p in papers if p.key not in keys]
        inner = {email: self._inner.rank_one(email, kept)}
        return self._profiled(kept, inner, {email: keys}, [email])[email]

    def _profiled(
        self,
        papers: Sequence[Paper],
        inner: dict[str, Ranking],
        skip: Mapping[str, Collection[str]],
        judged: Sequence[str],
    ) -> dict[str, Ranking]:
        import numpy as np

        result = dict(inner)
        self._fit_missing(papers)
        profiled = [email for email in judged if email in self._weights]
        for email in judged:
            if email not in self._weights:
                result[email] = _capped(inner[email], self._sections[email].max_papers)
        if not profiled or not papers:
            return result
        order = list(papers)
        vectors = self._matrix(order)
        profiles = np.stack([self._weights[email] for email in profiled])
        chance, standing = scores(profiles, vectors)  # one product for every judged reader
        place = {paper.key: i for i, paper in enumerate(order)}
        # Every judged reader's candidates in one table, sorted at once: the rules' matches the
        # profile keeps, then the papers it adds (see _candidates).
        table = self._candidates(order, place, inner, profiled, chance, standing, skip)
        reader, paper, rank, rule, score = table
        caps = np.array([self._sections[email].max_papers for email in profiled])
        counts = np.bincount(reader, minlength=len(profiled))
        starts = np.cumsum(counts) - counts
        shown = np.arange(len(reader)) - np.repeat(starts, counts) < caps[reader]
        added = np.flatnonzero(shown & ~rule)
        nearest = self._nearest_marked(profiled, reader[added], paper[added], vectors)
        labels = dict(zip(added.tolist(), nearest, strict=True))
        blank = Match.model_construct(paper=order[0])  # copied: a third of constructing one
        papers_l, ranks_l, rules_l, scores_l = paper.tolist(), rank.tolist(), rule.tolist(), score
        for j, email in enumerate(profiled):
            start, end = int(starts[j]), int(starts[j] + counts[j])
            stop = min(end, start + int(caps[j]))
            ruled = inner[email].matches
            if rules_l[start:stop].count(False) == 0:  # the rules' matches alone: no labels
                matches = list(map(ruled.__getitem__, ranks_l[start:stop]))
                result[email] = Ranking(
                    matches, end - start, partial(_keys_of, order, paper[stop:end])
                )
                continue
            matches = []
            for k in range(start, stop):
                if rules_l[k]:
                    matches.append(ruled[ranks_l[k]])
                else:
                    update = {
                        "paper": order[papers_l[k]],
                        "marked": labels[k],
                        "score": -float(scores_l[k]),
                    }
                    matches.append(blank.model_copy(update=update))
            below = paper[stop:end]
            result[email] = Ranking(matches, end - start, partial(_keys_of, order, below))
        return result

    def _candidates(
        self,
        order: list[Paper],
        place: Mapping[str, int],
        inner: Mapping[str, Ranking],
        profiled: Sequence[str],
        chance: Vectors,
        standing: Vectors,
        skip: Mapping[str, Collection[str]],
    ) -> tuple[Ints, Ints, Ints, Bools, Floats]:
        """Each reader's candidates, one row each, in the order their digest takes them:
        (reader, paper, rank, rule, score) columns sorted by reader, then score, then the
        rules' own rank, then the key. A rule's match (``rule``; ``rank``: its place in the
        rules' ranking) stays unless the profile is sure against it; a paper no rule names
        comes in when the profile wants it, it stands out and the reader's filters let it."""
        import numpy as np

        rows_of: dict[int, Ints] = {}  # by the id of a ranking's matches: rankings are shared
        segments: list[Ints] = []
        for email in profiled:
            ruled = inner[email].matches
            rows = rows_of.get(id(ruled))
            if rows is None:
                rows = rows_of[id(ruled)] = np.array(
                    [place[m.paper.key] for m in ruled], dtype=np.intp
                )
            segments.append(rows)
        lengths = np.array([len(rows) for rows in segments], dtype=np.intp)
        rule_paper = np.concatenate(segments)
        rule_reader = np.repeat(np.arange(len(profiled)), lengths)
        rule_rank = np.arange(len(rule_paper)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        named = np.zeros(chance.shape, dtype=bool)
        named[rule_paper, rule_reader] = True
        kept = np.flatnonzero(chance[rule_paper, rule_reader] >= KEEP_FROM)

        wanted = (standing >= ADD_FROM) & (chance >= ADD_CHANCE) & ~named
        add_paper, add_reader = np.nonzero(
            wanted & self._allowed(order, place, profiled, wanted, skip)
        )
        reader = np.concatenate([rule_reader[kept], add_reader])
        paper = np.concatenate([rule_paper[kept], add_paper])
        rank = np.concatenate([rule_rank[kept], lengths[add_reader]])
        rule = np.arange(len(reader)) < len(kept)
        z = standing[paper, reader].astype(np.float64)
        score = -(z + np.where(rule, RULE_BONUS, 0.0))
        by_key = np.empty(len(order), dtype=np.intp)
        by_key[sorted(range(len(order)), key=lambda i: order[i].key)] = np.arange(len(order))
        # the rules' rank, then the key (a rank that every added paper shares): one column
        ranked = np.lexsort((rank * len(order) + by_key[paper], score, reader))
        return reader[ranked], paper[ranked], rank[ranked], rule[ranked], score[ranked]

    def _allowed(
        self,
        order: list[Paper],
        place: Mapping[str, int],
        profiled: Sequence[str],
        wanted: Bools,
        skip: Mapping[str, Collection[str]],
    ) -> Bools:
        """Papers x readers: whether the reader's filters let the paper in (checked only on the
        papers some profile wants)."""
        import numpy as np

        allowed = np.zeros(wanted.shape, dtype=bool)
        asked = [order[i] for i in np.flatnonzero(wanted.any(axis=1)).tolist()]
        found = self._filters.rank_filtered(asked, skip=skip)
        if not found.papers:
            return allowed
        width = (len(found.papers) + 7) // 8  # a bit per paper of found.papers, as bytes
        packed = b"".join(found.passing.get(e, 0).to_bytes(width, "little") for e in profiled)
        bits = np.unpackbits(
            np.frombuffer(packed, dtype=np.uint8).reshape(len(profiled), width),
            axis=1, bitorder="little",
        )[:, : len(found.papers)]  # fmt: skip
        allowed[[place[p.key] for p in found.papers]] = bits.T.astype(bool)
        return allowed

    def _nearest_marked(
        self, profiled: Sequence[str], readers: Ints, papers: Ints, vectors: Vectors
    ) -> list[str | None]:
        """For each (reader, paper) pair, the title of the paper the reader marked "more" that
        the paper is closest to."""
        import numpy as np

        judges = sorted(set(readers.tolist()))
        wanted = dict.fromkeys(key for j in judges for key in self._marked[profiled[j]])
        missing = [key for key in wanted if key not in self._marked_papers]
        if missing:
            self._marked_papers.update(self._store.papers_by_key(missing))
        columns = [key for key in wanted if key in self._marked_papers]
        if not columns or not len(papers):
            return [None] * len(papers)
        column = {key: c for c, key in enumerate(columns)}
        marked = [self._marked_papers[key] for key in columns]
        closeness = vectors @ self._matrix(marked).T  # papers x marked
        width = max(len(self._marked[profiled[j]]) for j in judges)
        own = np.full((len(profiled), width), -1, dtype=np.intp)  # each reader's columns
        for j in judges:
            found = [column[key] for key in self._marked[profiled[j]] if key in column]
            own[j, : len(found)] = found
        pairs = own[readers]  # a row of the reader's columns per pair, -1 beyond them
        near = np.where(pairs >= 0, closeness[papers[:, None], np.maximum(pairs, 0)], -np.inf)
        best = pairs[np.arange(len(pairs)), near.argmax(axis=1)]
        titles = [_clip(paper.title) for paper in marked]
        return [titles[c] if c >= 0 else None for c in best.tolist()]


class _Overlay(Mapping[str, Collection[str]]):
    """``skip`` with the judged readers' entries over it, without copying ``skip``."""

    def __init__(
        self, base: Mapping[str, Collection[str]], over: Mapping[str, Collection[str]]
    ) -> None:
        self._base = base
        self._over = over

    def __getitem__(self, email: str) -> Collection[str]:
        found = self._over.get(email)
        return self._base[email] if found is None else found

    def get(self, email: str, default: object = None) -> Collection[str] | None:  # type: ignore[override]
        found = self._over.get(email)
        return self._base.get(email) if found is None else found

    def __iter__(self) -> Iterator[str]:
        return iter({*self._base, *self._over})

    def __len__(self) -> int:
        return len({*self._base, *self._over})


def _capped(ranking: Ranking, cap: int) -> Ranking:
    """A ranking the inner matcher made with the widest cap, cut to the reader's own."""
    if len(ranking.matches) <= cap:
        return ranking
    rest = tuple(m.paper.key for m in ranking.matches[cap:])
    return Ranking(ranking.matches[:cap], ranking.matched, (*rest, *ranking.passed_over))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LABEL else text[: _LABEL - 1].rstrip() + "…"


def _keys_of(papers: Sequence[Paper], rows: Ints) -> tuple[str, ...]:
    return tuple(papers[i].key for i in rows.tolist())


def profile_layer(subscribers: Sequence[Subscriber], context: MatcherContext) -> Matcher | None:
    """The registered ``profile`` matcher (:class:`~digest.match.MatcherFactory`): the
    ``inner`` matcher with the profiles of the readers who gave verdicts around it; None
    without verdicts to read (no ``feedback``) or without the semantic extra (profiles need
    paper embeddings: the verdicts wait for it)."""
    if context.feedback is None or context.inner is None or not embedding.installed():
        return None
    return with_profiles(
        subscribers, context.inner, context.feedback, liked=context.liked, texts=context.texts
    )


def with_profiles(
    subscribers: Sequence[Subscriber],
    build: Callable[[Sequence[Subscriber]], Matcher],
    store: FeedbackStore,
    *,
    liked: Mapping[str, Paper] | None = None,
    texts: TextCache | None = None,
) -> Matcher:
    """The matcher ``build`` makes for ``subscribers``, with the profiles of those who gave
    verdicts around it (their rules asked for every match, which the profile then cuts).
    ``texts``: the papers tokenised, shared with what ``build`` makes."""
    revisions = store.verdict_revisions([s.email for s in subscribers])
    if not revisions:
        return build(subscribers)
    from digest.match.embedding import bundled_embedder

    widest = [replace(s, max_papers=WIDEST) if s.address in revisions else s for s in subscribers]
    return ProfileMatcher(
        subscribers, build(widest), revisions, bundled_embedder(), store, liked=liked,
        texts=texts or TextCache(),
    )  # fmt: skip
