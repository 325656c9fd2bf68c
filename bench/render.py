"""Benchmark: rendering digests for many subscribers, inlined, against Jinja rendering alone.

    .venv/bin/python bench/render.py [--subscribers 10000] [--papers 60] [--seed 7]

Builds 60 real papers from the API samples in tests/fixtures, and subscribers who each get 10-15
of them (drawn with a popularity skew, so their digests overlap heavily as real ones do) with
highlights for their own keywords. Reports emails per second for

- floor: the same Jinja2 work (paper views, cards, layout, text part) without CSS inlining;
- full: ``Renderer.render`` (Jinja2 + premailer through the skeleton cache + size budget);
- naive (on the first ``--naive`` subscribers): the floor's HTML through one whole premailer
  pass per email, which is what the skeleton cache avoids;

and how many premailer passes the full run paid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sys
import time
from pathlib import Path

from markupsafe import Markup

from digest.config import Config, SubscriberSection
from digest.inline import premailer_transform
from digest.models import Match, Paper, Span
from digest.render import CARD_TEMPLATE, HTML_TEMPLATE, TEXT_TEMPLATE, Renderer, paper_view
from digest.sources.hf_api import parse_api

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "fixtures" / "samples" / "hf"
TERMS = (
    "language model", "reasoning", "diffusion", "agent", "benchmark", "video", "reinforcement",
    "multimodal", "retrieval", "alignment", "distillation", "efficient", "vision", "code",
    "speech", "robot", "3d", "attention", "tokens", "safety", "evaluation", "image", "policy",
    "training", "dataset", "transformer", "fine-tuning", "memory", "graph", "search",
)  # fmt: skip


def load_papers(count: int) -> list[Paper]:
    """``count`` distinct real papers from the API samples."""
    seen: dict[str, Paper] = {}
    for path in sorted(SAMPLES.glob("api_*.json")):
        for paper in parse_api(path.read_text(encoding="utf-8"), origin=str(path)):
            seen.setdefault(paper.key, paper)
    papers = list(seen.values())
    if len(papers) < count:
        sys.exit(f"only {len(papers)} distinct papers in {SAMPLES}")
    return papers[:count]


def matches_for(papers: list[Paper], terms: list[str], rng: random.Random) -> list[Match]:
    """10-15 papers, popularity-skewed, with spans for every term found in their text."""
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(papers))]
    chosen: list[Paper] = []
    while len(chosen) < rng.randint(10, 15):
        paper = rng.choices(papers, weights)[0]
        if paper not in chosen:
            chosen.append(paper)
    out = []
    for paper in chosen:
        spans: list[Span] = []
        found: list[str] = []
        for term in terms:
            pattern = re.compile(rf"\b{re.escape(term)}", re.IGNORECASE)
            for field in ("title", "abstract", "ai_summary"):
                for hit in pattern.finditer(getattr(paper, field) or ""):
                    spans.append(Span(field=field, start=hit.start(), end=hit.end()))
                    if term not in found:
                        found.append(term)
        out.append(Match(paper=paper, keywords=tuple(found or terms[:1]), spans=tuple(spans)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive", type=int, default=300)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    papers = load_papers(args.papers)
    config = Config.model_validate(
        {"delivery": {"unsubscribe_url": "https://example.org/unsubscribe?email={email}"}}
    )
    people = []
    for n in range(args.subscribers):
        terms = rng.sample(TERMS, rng.randint(2, 4))
        subscriber = SubscriberSection(
            email=f"user{n}@example.org", name=f"User {n}", keywords=terms
        )
        people.append((subscriber, matches_for(papers, terms, rng)))
    day = dt.date(2025, 10, 6)
    renderer = Renderer(config)

    # The floor: what the templates cost with no inlining at all.
    env = renderer._env
    card, layout, text = (
        env.get_template(n) for n in (CARD_TEMPLATE, HTML_TEMPLATE, TEXT_TEMPLATE)
    )
    start = time.perf_counter()
    floor_html: list[str] = []
    for subscriber, matches in people:
        base = renderer._base_context(subscriber, day, len(papers), len(matches))
        base["empty"] = not matches
        views = [paper_view(match, 0) for match in matches]
        cards = "".join(card.render(paper=view) for view in views)
        context = dict(base, papers=views, overflow=[], overflow_rest=0, cards=Markup(cards))
        context.update(renderer._counts(base, views, []))
        page = layout.render(**context)
        text.render(**context)
        if len(floor_html) < args.naive:
            floor_html.append(page)
    floor = time.perf_counter() - start

    start = time.perf_counter()
    for page in floor_html:
        premailer_transform(page)
    naive = time.perf_counter() - start

    start = time.perf_counter()
    total_bytes = 0
    largest = 0
    for subscriber, matches in people:
        rendered = renderer.render(
            subscriber, matches, day=day, new_count=len(papers), matched_count=len(matches)
        )
        size = len(rendered.html.encode("utf-8"))
        largest = max(largest, size)
        total_bytes += size + len(rendered.text)
    full = time.perf_counter() - start

    n = len(people)
    print(f"{n} subscribers x {len(papers)} papers, {sum(len(m) for _, m in people)} paper cards")
    print(f"floor (Jinja only):        {n / floor:8.0f} emails/s  ({floor:.1f} s)")
    print(f"full (Jinja + inlining):   {n / full:8.0f} emails/s  ({full:.1f} s)")
    print(f"ratio full/floor time:     {full / floor:8.2f}")
    per_naive = naive / max(1, len(floor_html))
    print(
        f"naive premailer per email: {1 / (floor / n + per_naive):8.0f} emails/s  "
        f"({per_naive * 1000:.1f} ms of premailer per email, {len(floor_html)} emails)"
    )
    print(f"premailer passes:          {renderer.inliner.premailer_runs:8d}")
    print(f"largest HTML part:         {largest:8d} bytes")


if __name__ == "__main__":
    main()
