"""The semantic matcher: ``about`` descriptions and ``like``d papers matched by meaning, beside
each subscriber's keyword rules (implements :class:`digest.match.Matcher`).

A paper matches a subscriber when the keyword rules pick it, or when it is close enough in
meaning (cosine similarity of :mod:`.embedding` vectors at least ``min_similarity``) to one of
their descriptions or liked papers; ``require``, ``exclude`` and ``min_upvotes`` apply to both.

Ranking, one formula for both kinds of evidence::

    relevance = max(keyword evidence, meaning evidence)
    keyword evidence = 1.0 with a keyword, author or organisation in the title, else 0.8
    meaning evidence = 0.5 + 0.5 * (s - m) / (1 - m)    for similarity s >= m = min_similarity

so a title hit ranks with the closest papers and a paper barely close enough ranks below every
keyword hit. Relevance is compared to two decimals; ties go to upvotes, then the newest, then the
key (:func:`.select.base_order`), one total order. Each paper is embedded once per process and
each distinct interest text once per matcher; a call scores all papers against all texts as one
matrix product.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

from digest.identity import arxiv_id
from digest.likes import liked_ids
from digest.match import Ranking
from digest.match.blend import NOTHING_CLOSE, Above, CloseSet, Wants, merge, rank_key
from digest.match.embedding import Embedder, paper_text
from digest.match.keywords import KeywordMatcher
from digest.match.select import NOTHING, base_order
from digest.match.text import TextCache
from digest.models import Match, Paper, Subscriber

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_MIN_SIMILARITY = 0.455  # calibrated on the hand-judged set of bench/relevance.py
# Two papers' texts are closer to each other than a sentence is to a paper: a liked paper needs
# this much more similarity (0.55 by default) to bring another in.
LIKED_MARGIN = 0.10
_KEYWORDS = "\0keywords"  # the keyword matcher's view of a subscriber with meaning interests
_VECTOR_CACHE_LIMIT = 50_000
_LABEL = 70  # characters of a description or title quoted in the "why" line


class PaperVectors(Protocol):
    """Where paper embeddings are kept between runs (the store implements it)."""

    def paper_vectors(self, keys: Collection[str]) -> dict[str, tuple[str, bytes]]:
        """The stored tag and float32 bytes of each of ``keys`` that has one."""

    def save_paper_vectors(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep these (key, tag, vector) rows."""


def vector_tag(model: str, text: str) -> str:
    """What made a vector: the model and a digest of the text, so changed text is embedded again."""
    return f"{model} {hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]}"


class _ViewSkip(Mapping[str, Collection[str]]):
    """``skip`` as the keyword matcher's views of each subscriber see it: their subscriber's."""

    def __init__(self, skip: Mapping[str, Collection[str]]) -> None:
        self._skip = skip

    def __getitem__(self, email: str) -> Collection[str]:
        return self._skip[email.split("\0", 1)[0]]

    def get(self, email: str, default: object = None) -> Collection[str] | None:  # type: ignore[override]
        return self._skip.get(email.split("\0", 1)[0])

    def __iter__(self) -> Iterator[str]:
        return iter(self._skip)

    def __len__(self) -> int:
        return len(self._skip)


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
    ) -> None:
        import numpy as np

        self._embedder = embedder
        self._liked = dict(liked or {})
        self._vectors = vectors if vectors is not None else {}
        self._store = store
        self._sections = {s.email: s for s in subscribers}
        self._order = [s.email for s in subscribers]
        self._singles: dict[str, SemanticMatcher] = {}
        views: list[Subscriber] = []
        filters: list[Subscriber] = []  # the subscribers with meaning interests, filters only
        self._wants: dict[str, Wants] = {}
        texts: dict[str, int] = {}
        self.labels: list[str] = []
        for section in subscribers:
            if not (section.about or section.like):
                views.append(section)
                continue
            has_keywords = bool(section.keywords or section.authors or section.organizations)
            if has_keywords:  # the keyword rules as they stand, capped as they would be alone
                views.append(replace(section, email=section.email + _KEYWORDS, about=(), like=()))
            filters.append(
                replace(section, keywords=(), authors=(), organizations=(), about=(), like=())
            )
            columns: dict[int, float] = {}
            base = section.min_similarity or DEFAULT_MIN_SIMILARITY
            for text, label, is_liked in self._interest_texts(section):
                column = texts.setdefault(text, len(texts))
                if column == len(self.labels):
                    self.labels.append(label)
                columns.setdefault(column, min(base + LIKED_MARGIN, 0.95) if is_liked else base)
            self._wants[section.email] = Wants(
                columns=tuple(columns),
                thresholds=tuple(columns.values()),
                cap=section.max_papers,
                has_keywords=has_keywords,
                liked=frozenset(liked_ids([section])),
            )
        self._keywords = KeywordMatcher(views, TextCache(), filters=filters)
        self._interests = (
            embedder.embed(list(texts)) if texts else np.zeros((0, 1), dtype=np.float32)
        )

    def _interest_texts(self, section: Subscriber) -> Iterator[tuple[str, str, bool]]:
        for about in section.about:
            text = " ".join(about.split())
            yield text, f"“{_clip(text)}”", False
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
        if not self._wants:
            return self._keywords.rank(papers, skip=skip)
        keyword, ordered, passing, hits = self._keywords.rank_filtered(
            papers, skip=_ViewSkip(skip) if skip else None
        )
        similarity = self._paper_vectors(ordered) @ self._interests.T if ordered else None
        order = {p.key: n for n, p in enumerate(sorted(papers, key=lambda p: base_order(p, 0)))}
        close: dict[tuple[object, ...], CloseSet] = {}
        merged: dict[tuple[object, ...], Ranking] = {}
        nearest: dict[tuple[object, ...], Any] = {}
        # the keyword rankings live as long as this call, so their ids name them
        summaries: dict[int, tuple[frozenset[str], float]] = {}
        copies: dict[tuple[int, int], Match] = {}
        result: dict[str, Ranking] = {}
        for email in self._order:
            wants = self._wants.get(email)
            if wants is None:
                result[email] = keyword[email]
                continue
            by_keyword = keyword[email + _KEYWORDS] if wants.has_keywords else NOTHING
            # Many subscribers share texts and filters, and most of them find nothing close
            # on a given day: their keyword ranking then stands as it is, shared.
            mask = passing[email]
            found_key = (wants.columns, wants.thresholds, wants.liked, mask)
            found = close.get(found_key)
            if found is None:
                found = close[found_key] = self._close(
                    wants, ordered, mask, similarity, nearest, order
                )
            if not found.entries and not wants.liked:
                result[email] = by_keyword
                continue
            merge_key = (found_key, wants.cap, id(by_keyword))
            ranking = merged.get(merge_key)
            if ranking is None:
                named = hits(email + _KEYWORDS) if wants.has_keywords else 0
                ranking = merged[merge_key] = merge(
                    wants, by_keyword, found, order, named, summaries, copies
                )
            result[email] = ranking
        return result

    def _close(
        self,
        wants: Wants,
        ordered: Sequence[Paper],
        mask: int,
        similarity: npt.NDArray[np.float32] | None,
        nearest: dict[tuple[object, ...], Any],
        order: Mapping[str, int],
    ) -> CloseSet:
        """The papers of ``mask`` (they pass the subscriber's filters) close enough in meaning,
        each with its meaning evidence and the closest interest named in its Match."""
        import numpy as np

        if similarity is None or not wants.columns or not mask:
            return NOTHING_CLOSE
        near_key = (wants.columns, wants.thresholds)
        near = nearest.get(near_key)
        if near is None and len(wants.columns) == 1:
            # One interest text (the usual case): every column above this threshold, at once.
            column, threshold = wants.columns[0], wants.thresholds[0]
            by_column = nearest.get(("columns", threshold))
            if by_column is None:
                by_column = nearest[("columns", threshold)] = Above(similarity, threshold)
            near = nearest[near_key] = by_column.get(column)
        if near is None:
            # Over every paper once per distinct set of interests; the filters come after.
            thresholds = np.array(wants.thresholds, dtype=np.float32)
            margins = similarity[:, list(wants.columns)] - thresholds
            best, which = margins.max(axis=1), margins.argmax(axis=1)
            near = nearest[near_key] = [
                (i, int(which[i]), float(best[i])) for i in np.flatnonzero(best >= 0).tolist()
            ]
        picks = nearest.get((near_key, "matches"))
        if picks is None:
            # Each close paper's Match made once per set of interests, whatever the filters,
            # best first: (rank key, paper row, Match, evidence).
            picks = []
            for i, column, margin in near:
                t = wants.thresholds[column]
                evidence = round(0.5 + 0.5 * margin / (1 - t), 2)  # compared to two decimals
                match = Match.model_construct(
                    paper=ordered[i], keywords=(), in_title=False, spans=(),
                    close_to=self.labels[wants.columns[column]],
                    similarity=round(margin + t, 2), score=evidence,
                )  # fmt: skip
                key = ordered[i].key
                picks.append((rank_key(evidence, order[key]), i, match, evidence, key))
            picks.sort(key=itemgetter(0))
            nearest[(near_key, "matches")] = picks
        liked = wants.liked
        entries: list[tuple[int, Match, float, str]] = []
        bits = 0
        for rank, i, match, evidence, key in picks:
            if mask >> i & 1 and not (liked and key in liked):
                entries.append((rank, match, evidence, key))
                bits |= 1 << i
        if not entries:
            return NOTHING_CLOSE
        return CloseSet(entries, {entry[3]: entry for entry in entries}, bits)

    def _paper_vectors(self, papers: Sequence[Paper]) -> npt.NDArray[np.float32]:
        """One row per paper: from this matcher's memory, else the store, else embedded now
        (and then kept in the store)."""
        import numpy as np

        missing = [p for p in dict.fromkeys(papers) if p.key not in self._vectors]
        if len(self._vectors) + len(missing) > _VECTOR_CACHE_LIMIT:
            self._vectors.clear()
            missing = list(dict.fromkeys(papers))
        tags = {p.key: vector_tag(self._embedder.name, paper_text(p)) for p in missing}
        if missing and self._store is not None:
            for key, (tag, raw) in self._store.paper_vectors(list(tags)).items():
                if tag == tags[key]:
                    self._vectors[key] = np.frombuffer(raw, dtype="<f4")
            missing = [p for p in missing if p.key not in self._vectors]
        if missing:
            fresh = self._embedder.embed([paper_text(p) for p in missing])
            for paper, vector in zip(missing, fresh, strict=True):
                self._vectors[paper.key] = vector
            if self._store is not None:
                self._store.save_paper_vectors(
                    [
                        (p.key, tags[p.key], v.astype("<f4").tobytes())
                        for p, v in zip(missing, fresh, strict=True)
                    ]
                )
        return np.stack([self._vectors[p.key] for p in papers])

    def rank_one(self, email: str, papers: Sequence[Paper]) -> Ranking:
        """One subscriber's ranking among ``papers``."""
        single = self._singles.get(email)
        if single is None:
            section = self._sections.get(email)
            if section is None:
                raise KeyError(f"{email} is not a subscriber of these interests")
            single = self._singles[email] = SemanticMatcher(
                [section], self._embedder, liked=self._liked, vectors=self._vectors,
                store=self._store,
            )  # fmt: skip
        return single.rank(papers)[email]


def _clip(text: str) -> str:
    return text if len(text) <= _LABEL else text[: _LABEL - 1].rstrip() + "…"
