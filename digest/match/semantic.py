"""The semantic matcher: ``about`` descriptions and ``like``d papers matched by meaning, beside
each subscriber's keyword rules (implements :class:`digest.match.Matcher`).

A paper matches a subscriber when the keyword rules pick it, or when it is close enough in
meaning to one of their descriptions or liked papers: its standard score ``z`` against the
collection of recent papers (:mod:`.closeness`) at least ``t``, the score of ``min_similarity``
(a share of recent papers, the same scale for a phrase, a sentence and a liked paper);
``require``, ``exclude`` and ``min_upvotes`` apply to both.

Ranking, one formula for both kinds of evidence::

    relevance = max(keyword evidence, meaning evidence)
    keyword evidence = 1.0 with a keyword, author or organisation in the title, else 0.8
    meaning evidence = 0.5 + 0.5 * min(1, (z - t) / 3)       for z >= t

so a title hit ranks with the closest papers and a paper barely close enough ranks below every
keyword hit. Relevance is compared to two decimals; ties go to the number of kinds of interest
named (keywords, authors, organisations; a paper found by meaning alone names none), then
upvotes, the newest, the key (:func:`.select.base_order`): one total order, and among keyword
matches the order of the keyword rules alone. Each paper is embedded once (and kept in the
store) and each distinct interest text once per matcher; a call scores all papers against all
texts as one matrix product, and the collection is read once per matcher.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Protocol

from digest.collector import cyclic_gc_paused
from digest.identity import arxiv_id
from digest.likes import liked_ids
from digest.match import MatcherContext, Ranking
from digest.match.blend import Above, Blend, Close, CloseSet, Wants, close_set, rank_key
from digest.match.closeness import (
    DEFAULT_MIN_SIMILARITY,
    REFERENCE_ENOUGH,
    REFERENCE_LIMIT,
    SAMPLE_PREFIX,
    Reference,
    collection_rows,
    evidence_of,
    sample_papers,
    share_of,
    threshold_of,
)
from digest.match.embedding import Embedder, interest_text, paper_text
from digest.match.keywords import KeywordMatcher, filters_alone
from digest.match.select import NOTHING
from digest.match.text import TextCache
from digest.models import Match, Paper, Subscriber

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_VECTOR_CACHE_LIMIT = 50_000
# The bundled sample papers' vectors by model, for the process: embedding them takes half a
# second, and a matcher without a store (a preview of a new store, a bench) would pay it again.
_SAMPLE_VECTORS: dict[str, dict[str, npt.NDArray[np.float32]]] = {}
_LABEL = 70  # characters of a description or title quoted in the "why" line


class PaperVectors(Protocol):
    """Where paper embeddings are kept between runs (the store implements it)."""

    def paper_vectors(self, keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """The stored tag and float32 bytes of each of ``keys`` that has one."""

    def recent_paper_vectors(self, model: str, limit: int) -> list[tuple[str, bytes]]:
        """The (key, float32 bytes) of the ``limit`` latest papers that ``model`` embedded."""

    def save_paper_vectors(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep these (key, tag, vector) rows."""


def vector_tag(model: str, text: str) -> str:
    """What made a vector: the model and a digest of the text, so changed text is embedded again."""
    return f"{model} {hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]}"


class _WithLikes(Mapping[str, Collection[str]]):
    """``skip`` with each subscriber's liked papers added: read already, so never offered."""

    def __init__(
        self, skip: Mapping[str, Collection[str]], liked: Mapping[str, frozenset[str]]
    ) -> None:
        self._skip = skip
        self._liked = liked
        self._joined: dict[str, Collection[str]] = {}

    def __getitem__(self, email: str) -> Collection[str]:
        found = self.get(email)
        if found is None:
            raise KeyError(email)
        return found

    def get(self, email: str, default: object = None) -> Collection[str] | None:  # type: ignore[override]
        liked = self._liked.get(email)
        if not liked:
            return self._skip.get(email)
        joined = self._joined.get(email)
        if joined is None:  # one collection per subscriber, which the keyword matcher memoises
            joined = self._joined[email] = liked.union(self._skip.get(email, ()))
        return joined

    def __iter__(self) -> Iterator[str]:
        return iter({*self._skip, *self._liked})

    def __len__(self) -> int:
        return len({*self._skip, *self._liked})


class _Collection:
    """The reference collection of one matcher and of the single-subscriber matchers it makes,
    worked out at the first ranking (it holds that day's papers) and then kept: every ranking of
    the run judges closeness against the same papers."""

    reference: Reference | None = None


class SemanticMatcher:
    """Keyword rules and meaning, for subscribers of whom some have ``about`` or ``like``."""

    def __init__(
        self,
        subscribers: Sequence[Subscriber],
        embedder: Embedder,
        *,
        liked: Mapping[str, Paper] | None = None,
        vectors: dict[str, npt.NDArray[np.float32]] | None = None,
        store: PaperVectors | None = None,
        text_cache: TextCache | None = None,
        collection: _Collection | None = None,
    ) -> None:
        import numpy as np

        self._embedder = embedder
        self._collection = collection or _Collection()
        self._scale: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None
        self._liked_centred: npt.NDArray[np.float32] | None = None  # liked papers, shared out
        self._liked = dict(liked or {})
        self._vectors = vectors if vectors is not None else {}
        self._store = store
        self._sections = {s.email: s for s in subscribers}
        self._order = [s.email for s in subscribers]
        self._singles: dict[str, SemanticMatcher] = {}
        self._blank_match: Match | None = None
        views: list[Subscriber] = []  # whose keyword rules the keyword matcher ranks
        meaning_readers: list[Subscriber] = []  # whose filters the keyword matcher checks alone
        # email -> (the id of its distinct meaning interests, them, whether it has keyword rules)
        self._meaning: dict[str, tuple[int, Wants, bool]] = {}
        self._liked_keys: dict[str, frozenset[str]] = {}
        by_interests: dict[tuple[object, ...], tuple[int, tuple[int, ...], tuple[float, ...]]] = {}
        # by what is embedded and the label that quotes it: readers whose words differ only in
        # filler share a vector, but each is quoted in their own words
        texts: dict[tuple[str, str], int] = {}
        self.labels: list[str] = []
        self._liked_columns: list[int] = []  # the texts that are liked papers
        for section in subscribers:
            has_keywords = bool(section.keywords or section.authors or section.organizations)
            if has_keywords or not (section.about or section.like):
                views.append(section)  # the keyword matcher reads no about or like
            if not (section.about or section.like):
                continue
            meaning_readers.append(section)
            # Many readers write the same interests: each distinct set is worked out once.
            interests = (section.about, section.like, section.min_similarity)
            known = by_interests.get(interests)
            if known is None:
                columns: dict[int, float] = {}
                threshold = threshold_of(section.min_similarity or DEFAULT_MIN_SIMILARITY)
                for text, label, is_liked in self._interest_texts(section):
                    column = texts.setdefault((text, label), len(texts))
                    if column == len(self.labels):
                        self.labels.append(label)
                        if is_liked:
                            self._liked_columns.append(column)
                    columns.setdefault(column, threshold)
                known = (len(by_interests), tuple(columns), tuple(columns.values()))
                by_interests[interests] = known
            likes = frozenset(liked_ids([section])) if section.like else frozenset()
            wid, columns_of, thresholds = known
            wants = Wants(columns_of, thresholds, cap=section.max_papers)
            self._meaning[section.email] = (wid, wants, has_keywords)
            if likes:
                self._liked_keys[section.email] = likes
        self._keywords = KeywordMatcher(
            views, text_cache or TextCache(), filters=filters_alone(meaning_readers)
        )
        self._interests = (
            embedder.embed([text for text, _ in texts])
            if texts
            else np.zeros((0, 1), dtype=np.float32)
        )

    def _interest_texts(self, section: Subscriber) -> Iterator[tuple[str, str, bool]]:
        for about in section.about:
            yield interest_text(about), f"“{_clip(' '.join(about.split()))}”", False
        for raw in section.like:
            paper = self._liked.get(arxiv_id(raw) or raw.strip())
            if paper is not None:  # `digest check` lists the liked papers not known yet
                label = f"liked paper {paper.arxiv_id} “{_clip(paper.title)}”"
                yield paper_text(paper), label, True

    @property
    def emails(self) -> list[str]:
        """The subscribers, in the order they were given."""
        return list(self._order)

    def rank(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, Ranking]:
        """Each subscriber's ranking among ``papers`` (see the module docstring)."""
        if not self._meaning:
            return self._keywords.rank(papers, skip=skip)
        with cyclic_gc_paused():  # as in the keyword matcher: many small acyclic objects
            return self._rank(papers, skip)

    def _rank(
        self, papers: Sequence[Paper], skip: Mapping[str, Collection[str]] | None
    ) -> dict[str, Ranking]:
        # Liked papers are read already: skipped like delivered ones, by both kinds of rules.
        if self._liked_keys:
            skip = _WithLikes(skip or {}, self._liked_keys)
        found = self._keywords.rank_filtered(papers, skip=skip)
        keyword, ordered, named = found.rankings, found.papers, found.named
        similarity = self._standard_scores(ordered) if ordered else None
        # Bit i is paper i, the best in base order holds the highest bit.
        place = {p.key: len(ordered) - 1 - i for i, p in enumerate(ordered)}
        above: dict[float, Above] = {}
        picks_of: dict[int, list[Close]] = {}
        close: dict[tuple[int, int], CloseSet] = {}
        merged: dict[tuple[int, int, int, int], Ranking] = {}
        blend = Blend(place)
        result: dict[str, Ranking] = {}
        for email in self._order:
            meaning = self._meaning.get(email)
            if meaning is None:
                result[email] = keyword[email]
                continue
            wid, wants, has_keywords = meaning
            by_keyword = keyword[email] if has_keywords else NOTHING
            picks = picks_of.get(wid)
            if picks is None:
                picks = picks_of[wid] = self._picks(wants, ordered, similarity, above, place)
            # Most subscribers find nothing close on a given day: their keyword ranking stands.
            if not picks:
                result[email] = by_keyword
                continue
            mask = found.passing[email]
            near = close.get((wid, mask))
            if near is None:
                near = close[(wid, mask)] = close_set(picks, mask)
            if not near.entries:
                result[email] = by_keyword
                continue
            # The keyword ranking names the keyword rules and history (rankings live as long as
            # the call), the mask the filters, history and likes: together, all a merge reads.
            merge_key = (wid, mask, wants.cap, id(by_keyword))
            ranking = merged.get(merge_key)
            if ranking is None:
                ranking = merged[merge_key] = (
                    blend.merge(
                        wants.cap, by_keyword, near, named.mask(email), partial(named.match, email)
                    )
                    if has_keywords
                    else blend.merge(wants.cap, by_keyword, near, 0, None)
                )
            result[email] = ranking
        return result

    def _blank(self, paper: Paper) -> Match:
        """A Match to copy the picks from, made once per matcher: every copy gives its own
        paper, label, similarity and score, and the rest are the defaults of a pick."""
        if self._blank_match is None:
            self._blank_match = Match.model_construct(paper=paper)
        return self._blank_match

    def _picks(
        self,
        wants: Wants,
        ordered: Sequence[Paper],
        similarity: npt.NDArray[np.float32] | None,
        above: dict[float, Above],
        place: Mapping[str, int],
    ) -> list[Close]:
        """The papers close enough in meaning to one set of interests, whatever the filters,
        best first, each with its meaning evidence and the closest interest named in its Match."""
        import numpy as np

        if similarity is None or not wants.columns:
            return []
        if len(wants.columns) == 1:
            # One interest text (the usual case): every column above this threshold, at once.
            threshold = wants.thresholds[0]
            by_column = above.get(threshold)
            if by_column is None:
                by_column = above[threshold] = Above(similarity, threshold)
            near = by_column.get(wants.columns[0])
        else:
            thresholds = np.array(wants.thresholds, dtype=np.float32)
            margins = similarity[:, list(wants.columns)] - thresholds
            best, which = margins.max(axis=1), margins.argmax(axis=1)
            near = [(i, int(which[i]), float(best[i])) for i in np.flatnonzero(best >= 0).tolist()]
        picks: list[Close] = []
        blank = self._blank(ordered[0])  # copied: a third of constructing one
        for i, column, margin in near:
            t = wants.thresholds[column]
            evidence = round(evidence_of(margin + t, t), 2)  # compared to two decimals
            paper = ordered[i]
            match = blank.model_copy(
                update={
                    "paper": paper, "close_to": self.labels[wants.columns[column]],
                    "similarity": share_of(margin + t), "score": evidence,
                }
            )  # fmt: skip
            picks.append((rank_key(evidence, 0, place[paper.key]), i, match, evidence, paper.key))
        picks.sort(key=itemgetter(0))
        return picks

    def _standard_scores(self, papers: Sequence[Paper]) -> npt.NDArray[np.float32]:
        """Each paper's standard score against each interest text (a row per paper)."""
        import numpy as np

        vectors = embedded(papers, self._embedder, self._vectors, self._store)
        if self._scale is None:
            reference = self._collection.reference
            if reference is None:
                # After embedding: the day's vectors are in the store's recent ones, so a digest
                # rebuilt later in the run is judged against the same papers.
                recent = (
                    self._store.recent_paper_vectors(self._embedder.name, REFERENCE_LIMIT)
                    if self._store is not None
                    else []
                )
                rows = collection_rows(vectors, [p.key for p in papers], recent)
                if len(rows) < REFERENCE_ENOUGH:  # a first run: the bundled papers fill in
                    extra = [
                        p for p in sample_papers() if p.key.removeprefix(SAMPLE_PREFIX) not in rows
                    ]
                    kept = _SAMPLE_VECTORS.setdefault(self._embedder.name, {})
                    more = embedded(extra, self._embedder, kept, self._store)
                    rows.update(zip([p.key for p in extra], more, strict=True))
                reference = Reference.of(np.stack(list(rows.values())))
                self._collection.reference = reference
            self._scale = self._scaled(reference)
        means, spread = self._scale
        cosines = vectors @ self._interests.T
        liked = self._liked_columns
        reference = self._collection.reference
        if liked and reference is not None and self._liked_centred is not None:
            cosines[:, liked] = reference.without_shared(vectors) @ self._liked_centred.T
        scores: npt.NDArray[np.float32] = (cosines - means) / spread
        return scores

    def _scaled(
        self, reference: Reference
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Each interest text's mean and spread over the collection; a liked paper's over the
        collection with what its papers share taken out."""
        means, spread = reference.scale(self._interests)
        liked = self._liked_columns
        if liked and reference.shared is not None:
            self._liked_centred = reference.without_shared(self._interests[liked])
            means[liked], spread[liked] = reference.shared.scale(self._liked_centred)
        return means, spread

    def rank_one(self, email: str, papers: Sequence[Paper]) -> Ranking:
        """One subscriber's ranking among ``papers``."""
        single = self._singles.get(email)
        if single is None:
            section = self._sections.get(email)
            if section is None:
                raise KeyError(f"{email} is not a subscriber of these interests")
            single = self._singles[email] = SemanticMatcher(
                [section], self._embedder, liked=self._liked, vectors=self._vectors,
                store=self._store, collection=self._collection,
            )  # fmt: skip
        return single.rank(papers)[email]


def semantic_layer(
    subscribers: Sequence[Subscriber], context: MatcherContext
) -> SemanticMatcher | None:
    """The registered ``semantic`` matcher (:class:`~digest.match.MatcherFactory`), for
    subscribers of whom someone describes interests in words or by liked papers; it ranks the
    keyword rules itself (it needs their filter masks from the same scan), so it wraps no
    ``inner``."""
    if not any(s.about or s.like for s in subscribers):
        return None
    from digest.match.embedding import bundled_embedder

    return SemanticMatcher(
        subscribers, bundled_embedder(), liked=context.liked, store=context.vectors,
        text_cache=context.texts,
    )  # fmt: skip


def embedded(
    papers: Sequence[Paper],
    embedder: Embedder,
    cache: dict[str, npt.NDArray[np.float32]],
    store: PaperVectors | None,
) -> npt.NDArray[np.float32]:
    """One row per paper: from ``cache``, else the store, else embedded now (and then kept in
    the store and the cache)."""
    import numpy as np

    missing = [p for p in dict.fromkeys(papers) if p.key not in cache]
    if len(cache) + len(missing) > _VECTOR_CACHE_LIMIT:
        cache.clear()
        missing = list(dict.fromkeys(papers))
    tags = {p.key: vector_tag(embedder.name, paper_text(p)) for p in missing}
    if missing and store is not None:
        for key, (tag, raw) in store.paper_vectors(list(tags)).items():
            if tag == tags[key]:
                cache[key] = np.frombuffer(raw, dtype="<f4")
        missing = [p for p in missing if p.key not in cache]
    if missing:
        fresh = embedder.embed([paper_text(p) for p in missing])
        for paper, vector in zip(missing, fresh, strict=True):
            cache[paper.key] = vector
        if store is not None:
            store.save_paper_vectors(
                [
                    (p.key, tags[p.key], v.astype("<f4").tobytes())
                    for p, v in zip(missing, fresh, strict=True)
                ]
            )
    if not papers:
        return np.zeros((0, 1), dtype=np.float32)
    return np.stack([cache[p.key] for p in papers])


def _clip(text: str) -> str:
    return text if len(text) <= _LABEL else text[: _LABEL - 1].rstrip() + "…"
