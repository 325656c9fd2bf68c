"""The blended ranking against the formula itself: hundreds of random subscribers on the real
samples, ranked together by the semantic matcher (its shortcuts and shared caches included), and
each one ranked again from scratch, paper by paper, as digest/match/semantic.py documents it."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import random
import statistics
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from digest.match import Ranking
from digest.match.closeness import DEFAULT_MIN_SIMILARITY
from digest.match.keywords import KeywordMatcher
from digest.match.select import base_order, kinds_named
from digest.match.semantic import SemanticMatcher
from digest.match.text import TextCache
from digest.models import Match, Paper, Subscriber
from digest.sources.sniff import parse_document

np = pytest.importorskip("numpy")
pytest.importorskip("wordllama", reason="the semantic extra is not installed")

from digest.match.embedding import bundled_embedder, interest_text, paper_text  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "samples"
KEYWORDS = [
    "reasoning", "agent*", "video", "reinforcement learning", "RL", "diffusion", "benchmark",
    "3D", "memory", "token*", "language model*", "multimodal", "image",
]  # fmt: skip
BROAD = ["model*", "data*", "learning", "method*", "performance"]
TEXTS = TextCache()  # the papers' tokenised text, shared by the reference's keyword matchers
ABOUT = [
    "training language models from reward signals",
    "agents that browse the web and use tools",
    "generating and editing videos",
    "compressing visual tokens for faster multimodal models",
    "memory for long-running assistants",
]


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    """Every distinct paper of the API samples and the saved page: upvotes, dates, orgs."""
    found: dict[str, Paper] = {}
    for path in [*sorted((SAMPLES / "hf").glob("api_*.json")), *(SAMPLES / "hf").glob("*.html")]:
        for paper in parse_document(path.read_bytes(), origin=path.name, today=dt.date(2026, 8, 1)):
            found.setdefault(paper.key, paper)
    assert len(found) > 80
    return list(found.values())


def random_subscribers(papers: list[Paper], count: int, rng: random.Random) -> list[Subscriber]:
    liked = [p.arxiv_id for p in papers if p.arxiv_id]
    titles = [p.title for p in papers]  # a paper's own title is very close to it: evidence > 0.8
    popular = [p.title for p in sorted(papers, key=lambda p: base_order(p, 0))[1:12]]
    out: list[Subscriber] = []
    for n in range(count):
        about = rng.sample(ABOUT + rng.sample(titles, 3), rng.choice([0, 1, 1, 2]))
        like = [rng.choice(liked)] if rng.random() < 0.2 else []
        if not about and not like:
            about = [rng.choice(ABOUT)]
        keywords = rng.sample(KEYWORDS, rng.choice([0, 1, 2, 3])) if rng.random() < 0.8 else []
        low = None
        if rng.random() < 0.25:
            # Words most papers use, and a paper's own title barely filtered: keyword matches
            # outside the title whose closeness lifts them, some from below the keyword cap.
            keywords, low = [rng.choice(BROAD)], rng.choice([0.1, 0.15])
            about = rng.sample(titles if rng.random() < 0.5 else popular, 2)
        rest = [k for k in KEYWORDS if k not in keywords]
        require = [rng.choice(rest)] if rng.random() < 0.1 else []
        exclude = [rng.choice(rest)] if rng.random() < 0.15 else []
        exclude = [k for k in exclude if k not in require]
        out.append(
            Subscriber(
                email=f"reader{n}@example.org",
                keywords=tuple(keywords),
                authors=tuple(rng.sample(["Wang", "Zhang", "Li"], 1)) if rng.random() < 0.2 else (),
                require=tuple(require),
                exclude=tuple(exclude),
                min_upvotes=rng.choice([3, 10]) if rng.random() < 0.1 else None,
                about=tuple(about),
                like=tuple(like),
                min_similarity=low or rng.choice([None, None, 0.3, 0.4, 0.6]),
                max_papers=rng.choice([1, 2, 3, 5, 8, 15]),
            )
        )
    # Readers who wrote the same interests share what the matcher works out once, and readers
    # who wrote the same keywords share their keyword Matches, whatever else they wrote.
    twins = [replace(s, email=f"twin.{s.email}") for s in out[: count // 4]]
    siblings = [
        replace(s, email=f"sibling.{s.email}", about=(ABOUT[n % len(ABOUT)],), like=())
        for n, s in enumerate(out[count // 4 : count // 2])
    ]
    return out + twins + siblings


@dataclass(frozen=True)
class Expected:
    keys: list[str]
    matched: int
    below: set[str]
    reasons: dict[str, tuple[tuple[str, ...], str | None, float | None]]
    cases: set[str]  # the ways this ranking differs from its keyword ranking


def everything(section: Subscriber, papers: list[Paper], skip: set[str]) -> list[Match]:
    """The section's keyword matches among ``papers``, uncapped, ``skip`` left out."""
    uncapped = replace(section, about=(), like=(), max_papers=10_000)
    found = KeywordMatcher([uncapped], TEXTS).rank(papers, skip={section.email: skip})
    return found[section.email].matches


def expected(
    section: Subscriber, papers: list[Paper], liked: dict[str, Paper], skip: set[str]
) -> Expected:
    """The ranking of digest/match/semantic.py's docstring, worked out for one subscriber."""
    embedder = bundled_embedder()
    skip = skip | {arxiv_id for arxiv_id in section.like}
    has_keywords = bool(section.keywords or section.authors or section.organizations)
    by_keyword = {m.paper.key: m for m in everything(section, papers, skip)} if has_keywords else {}
    filters_only = replace(section, keywords=(), authors=(), organizations=())
    passing = {m.paper.key for m in everything(filters_only, papers, skip)}
    # one threshold for every kind of interest: the standard score of min_similarity's share
    base = NORMAL.inv_cdf(section.min_similarity or DEFAULT_MIN_SIMILARITY)
    # an about text is embedded from its topic's words (see test_semantic), labelled as written
    texts = [(interest_text(a), base, "“" + " ".join(a.split())[:40]) for a in section.about]
    for raw in section.like:
        texts.append((paper_text(liked[raw]), base, raw))
    thresholds = np.array([t for _, t, _ in texts], dtype=np.float32)
    reference = collection(tuple(papers))
    vectors = paper_vectors(tuple(papers)).astype(np.float64)
    interests = embedder.embed([text for text, _, _ in texts]).astype(np.float64)
    similarity = standard_scores(vectors, interests, reference)
    liked_columns = list(range(len(section.about), len(texts)))
    if liked_columns:  # a liked paper: every vector less the collection's mean, then the same
        mean = reference.mean(axis=0)
        similarity[:, liked_columns] = standard_scores(
            unit(vectors - mean), unit(interests[liked_columns] - mean), unit(reference - mean)
        )
    margins = similarity - thresholds
    place = {p.key: n for n, p in enumerate(sorted(papers, key=lambda p: base_order(p, 0)))}
    ranked: list[tuple[tuple[int, int, int], str]] = []
    reasons: dict[str, tuple[tuple[str, ...], str | None, float | None]] = {}
    close: set[str] = set()
    for row, paper in enumerate(papers):
        column = int(margins[row].argmax())
        margin, threshold = float(margins[row, column]), texts[column][1]
        is_close = paper.key in passing and margin >= 0
        match = by_keyword.get(paper.key)
        if not is_close and match is None:
            continue
        relevance, kinds = 0.0, 0
        if match is not None:
            relevance, kinds = (1.0 if match.in_title else 0.8), kinds_named(match)
        if is_close:
            close.add(paper.key)
            relevance = max(relevance, round(0.5 + 0.5 * min(1.0, margin / 3), 2))
        ranked.append(((-round(relevance * 100), -kinds, place[paper.key]), paper.key))
        reasons[paper.key] = (
            match.keywords if match is not None else (),
            texts[column][2] if is_close else None,
            NORMAL.cdf(margin + threshold) if is_close else None,
        )
    ranked.sort()
    keys = [key for _, key in ranked[: section.max_papers]]
    return Expected(
        keys=keys,
        matched=len(ranked),
        below={key for _, key in ranked[section.max_papers :]},
        reasons=reasons,
        cases=cases(ranked[: section.max_papers], by_keyword, place, section.max_papers),
    )


def cases(
    top: list[tuple[tuple[int, int, int], str]],
    by_keyword: dict[str, Match],
    place: dict[str, int],
    cap: int,
) -> set[str]:
    """Which of the ways a blended ranking can differ from its keyword ranking ``top`` shows."""

    def keyword_order(key: str) -> tuple[bool, int, int]:
        match = by_keyword[key]
        return not match.in_title, -kinds_named(match), place[key]

    alone = sorted(by_keyword, key=keyword_order)
    keys = [key for _, key in top]
    found: set[str] = set()
    if any(key not in by_keyword for key in keys[: len([k for k in keys if k in by_keyword])]):
        found.add("a paper found by meaning alone above a keyword match")
    named = [key for key in keys if key in by_keyword]
    if named != [key for key in alone if key in named]:
        found.add("keyword matches reordered by closeness")
    cut = alone[:cap]
    if [key for key in named if key in cut] != [key for key in cut if key in named]:
        found.add("keyword matches of the keyword cut reordered by closeness")
    if set(named) - set(cut):
        found.add("a keyword match from below the keyword cap")
    for (a, _), (b, _) in itertools.pairwise(top):
        if a[0] == b[0] and a[1] != b[1]:
            found.add("equal relevance, the kinds of interest decide")
    return found


@functools.cache
def paper_vectors(papers: tuple[Paper, ...]) -> Any:
    return bundled_embedder().embed([paper_text(p) for p in papers])


NORMAL = statistics.NormalDist()


@functools.cache
def collection(papers: tuple[Paper, ...]) -> Any:
    """What closeness is judged against without a store: the papers ranked and the bundled
    samples (the API days and the saved text pages), each paper once."""
    found = {p.key: p for p in papers}
    for path in [*(SAMPLES / "hf").glob("api_*.json"), *(SAMPLES / "text-pages").glob("*.txt")]:
        for paper in parse_document(path.read_bytes(), origin=path.name, today=dt.date(2026, 8, 1)):
            found.setdefault(paper.key, paper)
    return paper_vectors(tuple(found.values())).astype(np.float64)


def unit(rows: Any) -> Any:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def standard_scores(vectors: Any, interests: Any, reference: Any) -> Any:
    """Each paper's cosine to each interest, standardised by the interest's cosines to every
    paper of ``reference`` (their mean and standard deviation, computed directly)."""
    against = reference @ interests.T
    return (vectors @ interests.T - against.mean(axis=0)) / against.std(axis=0)


def said(match: Match, label: str | None) -> bool:
    close_to = match.close_to or ""
    return label is None or close_to.startswith((label, f"liked paper {label}"))


def test_every_ranking_follows_the_formula(papers: list[Paper]) -> None:
    rng = random.Random(18)
    subscribers = random_subscribers(papers, 240, rng)
    liked = {p.arxiv_id: p for p in papers if p.arxiv_id}
    delivered = {
        s.email: {p.key for p in rng.sample(papers, 10)} for s in subscribers if rng.random() < 0.3
    }
    matcher = SemanticMatcher(subscribers, bundled_embedder(), liked=liked)
    rankings: dict[str, Ranking] = matcher.rank(papers, skip=delivered)
    seen: Counter[str] = Counter()
    for section in subscribers:
        want = expected(section, papers, liked, delivered.get(section.email, set()))
        got = rankings[section.email]
        assert [m.paper.key for m in got.matches] == want.keys, section
        assert got.matched == want.matched, section
        assert set(got.passed_over) == want.below, section
        for match in got.matches:
            keywords, label, similarity = want.reasons[match.paper.key]
            assert match.keywords == keywords
            assert said(match, label), (match, label)
            if similarity is None:
                assert match.similarity is None
            else:
                assert match.similarity == pytest.approx(similarity, abs=1e-3), match
        seen.update(want.cases)
        seen["close and named"] += any(m.keywords and m.close_to for m in got.matches)
        seen["capped"] += want.matched > section.max_papers
    # every way a ranking is put together was taken by some of them
    assert len(seen) == 7 and min(seen.values()) >= 3, seen
