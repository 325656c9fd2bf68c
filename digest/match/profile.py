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
tag of what it was fitted from and fitted again only when that changes, so a run pays one
matrix product for all judged readers, and a digest rebuilt elsewhere ranks the same.

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
from typing import TYPE_CHECKING, Protocol

from digest.match import Matcher, MatcherContext, Ranking, embedding
from digest.match.embedding import Embedder, paper_text
from digest.match.keywords import KeywordMatcher
from digest.match.semantic import PaperVectors, embedded
from digest.match.text import TextCache
from digest.models import Match, Paper, Subscriber

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

FIT_VERSION = "1"  # part of every tag: a change of the formula fits every profile again
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
        """Readers' verdicts (+1, -1) by address, then paper key."""

    def papers_by_key(self, keys: Collection[str]) -> dict[str, Paper]:
        """The stored records of ``keys``."""

    def reader_profiles(self, emails: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """The kept profile (tag, float32 weights) of each reader that has one."""

    def save_reader_profiles(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep these (address, tag, weights) profiles."""


@dataclass(frozen=True)
class Verdicts:
    """One reader's verdicts, with the papers they name (those the store still holds)."""

    more: tuple[Paper, ...]
    less: tuple[Paper, ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(p.key for p in (*self.more, *self.less))


def prior_texts(subscriber: Subscriber, liked: Mapping[str, Paper]) -> list[str]:
    """The reader's own interests as texts: the positive side before any verdict."""
    texts = [" ".join(about.split()) for about in subscriber.about]
    texts += [paper_text(paper) for raw in subscriber.like if (paper := liked.get(raw.strip()))]
    terms = [*subscriber.keywords, *subscriber.organizations]
    if terms:
        texts.append(", ".join(terms))
    return texts


def profile_tag(model: str, verdicts: Verdicts, prior: Sequence[str]) -> str:
    """What a profile is fitted from: the model, the verdicts and the interests."""
    parts = [FIT_VERSION, model, *sorted(f"+{p.key}" for p in verdicts.more)]
    parts += sorted(f"-{p.key}" for p in verdicts.less)
    parts += prior
    return hashlib.sha1("\n".join(parts).encode("utf-8")).hexdigest()[:20]


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
        verdicts: Mapping[str, Verdicts],
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
        self._verdicts = {
            s.email: verdicts[s.address] for s in subscribers if s.address in verdicts
        }
        self._priors = {e: prior_texts(self._sections[e], liked or {}) for e in self._verdicts}
        self._weights: dict[str, Vectors] = {}
        self._earlier: dict[str, Vectors] = {}  # profiles fitted before the latest verdicts
        # the judged readers' filters alone (require, exclude, min_upvotes), as bit masks
        self._filters = KeywordMatcher(
            [],
            texts or TextCache(),
            filters={
                email: replace(
                    self._sections[email], keywords=(), authors=(), organizations=(), about=(),
                    like=(),
                )
                for email in self._verdicts
            },
        )  # fmt: skip
        self._load_kept()

    @property
    def emails(self) -> list[str]:
        """The subscribers, in the order they were given."""
        return self._inner.emails

    def _tag(self, email: str) -> str:
        return profile_tag(self._embedder.name, self._verdicts[email], self._priors[email])

    def _load_kept(self) -> None:
        import numpy as np

        kept = self._store.reader_profiles(list(self._verdicts))
        for email in self._verdicts:
            found = kept.get(self._sections[email].address)
            if found is None:
                continue
            weights = np.frombuffer(found[1], dtype="<f4")
            if found[0] == self._tag(email):
                self._weights[email] = weights
            else:
                self._earlier[email] = weights[:-2]  # where the new fit starts

    def _fit_missing(self, background: Sequence[Paper]) -> None:
        """Fit the profiles not kept (or kept for other verdicts), and keep them."""
        missing = [email for email in self._verdicts if email not in self._weights]
        if not missing:
            return
        import numpy as np

        marked: dict[str, Paper] = {}
        for email in missing:
            marked.update(
                (p.key, p) for p in (*self._verdicts[email].more, *self._verdicts[email].less)
            )
        vectors = self._matrix(list(marked.values()))
        row = {key: i for i, key in enumerate(marked)}
        shared = self._matrix(list(background)[:BACKGROUND_LIMIT])
        texts = list(dict.fromkeys(t for email in missing for t in self._priors[email]))
        prior_rows = dict(zip(texts, self._embedder.embed(texts), strict=True)) if texts else {}
        rows: list[tuple[str, str, bytes]] = []
        for email in missing:
            judged = self._verdicts[email]
            positive = [vectors[row[p.key]] for p in judged.more]
            positive += [prior_rows[text] for text in self._priors[email]]
            keys = judged.keys
            negative = [vectors[row[p.key]] for p in judged.less]
            unjudged = [v for p, v in zip(background, shared, strict=False) if p.key not in keys]
            if not positive or not (negative or unjudged):
                continue  # nothing to tell apart: the rules alone decide
            dim = vectors.shape[1]
            others = np.array(unjudged).reshape(-1, dim)
            fitted = fit(
                np.array(positive), np.array(negative).reshape(-1, dim), others,
                start=self._earlier.get(email),
            )  # fmt: skip
            weights = standardised(fitted, others if len(others) else np.array(positive))
            self._weights[email] = weights
            rows.append(
                (self._sections[email].address, self._tag(email), weights.astype("<f4").tobytes())
            )
        self._store.save_reader_profiles(rows)

    def _matrix(self, papers: Sequence[Paper]) -> Vectors:
        return embedded(papers, self._embedder, self._vectors, self._store)

    def rank(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, Ranking]:
        """Each subscriber's ranking: the inner matcher's, or, for a judged reader, the one
        their profile makes of it (see the module docstring)."""
        skip = skip or {}
        judged_skip = {
            email: self._verdicts[email].keys.union(skip.get(email, ())) for email in self._verdicts
        }
        inner = self._inner.rank(papers, skip=_Overlay(skip, judged_skip))
        return self._profiled(papers, inner, judged_skip, list(self._verdicts))

    def rank_one(self, email: str, papers: Sequence[Paper]) -> Ranking:
        """One subscriber's ranking among ``papers``."""
        if email not in self._sections:
            raise KeyError(f"{email} is not a subscriber of these interests")
        if email not in self._verdicts:
            return self._inner.rank_one(email, papers)
        keys = self._verdicts[email].keys
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
        wanted = (standing >= ADD_FROM) & (chance >= ADD_CHANCE)
        place = {paper.key: i for i, paper in enumerate(order)}
        # the readers' filters, checked only on the few papers a profile would add
        asked = [order[i] for i in np.flatnonzero(wanted.any(axis=1)).tolist()]
        found = self._filters.rank_filtered(asked, skip=skip)
        bit = {paper.key: 1 << i for i, paper in enumerate(found.papers)}
        blank = Match.model_construct(paper=order[0])  # copied: a third of constructing one
        for j, email in enumerate(profiled):
            ruled = inner[email].matches
            chosen: list[tuple[float, int, str, Match | Paper]] = []
            for rank, match in enumerate(ruled):
                i = place[match.paper.key]
                if chance[i, j] >= KEEP_FROM:
                    chosen.append(
                        (-(float(standing[i, j]) + RULE_BONUS), rank, match.paper.key, match)
                    )
            allowed = found.passing.get(email, 0)  # a bit per paper of found.papers
            named = {match.paper.key for match in ruled}
            for i in np.flatnonzero(wanted[:, j]).tolist():
                paper = order[i]
                if allowed & bit.get(paper.key, 0) and paper.key not in named:
                    chosen.append((-float(standing[i, j]), len(ruled), paper.key, paper))
            chosen.sort(key=lambda entry: entry[:3])
            cap = self._sections[email].max_papers
            # only the papers shown become matches, and only the added ones need a label
            added = [e[3] for e in chosen[:cap] if isinstance(e[3], Paper)]
            nearest = self._nearest_marked(email, added, vectors, place)
            labels = dict(zip((p.key for p in added), nearest, strict=True))
            shown: list[Match] = []
            for z, _, key, entry in chosen[:cap]:
                if isinstance(entry, Match):
                    shown.append(entry)
                else:
                    update = {"paper": entry, "marked": labels[key], "score": -z}
                    shown.append(blank.model_copy(update=update))
            result[email] = Ranking(shown, len(chosen), tuple(e[2] for e in chosen[cap:]))
        return result

    def _nearest_marked(
        self, email: str, papers: Sequence[Paper], vectors: Vectors, index: Mapping[str, int]
    ) -> list[str | None]:
        """For each of ``papers``, the title of the paper marked "more" it is closest to."""
        more = self._verdicts[email].more
        if not more or not papers:
            return [None] * len(papers)
        import numpy as np

        # every marked paper is in the cache since the fit (or the first call) embedded it
        marked = np.stack([self._vectors[p.key] for p in more]) if all(
            p.key in self._vectors for p in more
        ) else self._matrix(list(more))  # fmt: skip
        closeness = vectors[[index[p.key] for p in papers]] @ marked.T
        return [_clip(more[int(row.argmax())].title) for row in closeness]


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
    judged = judged_readers(subscribers, store)
    if not judged:
        return build(subscribers)
    from digest.match.embedding import bundled_embedder

    widest = [replace(s, max_papers=WIDEST) if s.address in judged else s for s in subscribers]
    return ProfileMatcher(
        subscribers, build(widest), judged, bundled_embedder(), store, liked=liked,
        texts=texts or TextCache(),
    )  # fmt: skip


def judged_readers(subscribers: Sequence[Subscriber], store: FeedbackStore) -> dict[str, Verdicts]:
    """The readers of ``subscribers`` who gave verdicts, by address, with the papers judged."""
    given = store.verdicts([s.email for s in subscribers])
    if not given:
        return {}
    papers = store.papers_by_key({key for found in given.values() for key in found})
    judged: dict[str, Verdicts] = {}
    for address, found in given.items():
        more = tuple(papers[k] for k, v in found.items() if v > 0 and k in papers)
        less = tuple(papers[k] for k, v in found.items() if v < 0 and k in papers)
        if more or less:
            judged[address] = Verdicts(more, less)
    return judged
