"""Paper identity: versionless arXiv ids, title keys, the canonical key, batch merging."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

import pytest

from digest.identity import (
    Resolver,
    arxiv_id,
    merge_papers,
    merge_two,
    normalize_whitespace,
    paper_key,
    title_key,
)
from digest.models import Paper
from digest.sources.hf_api import parse_api
from digest.sources.hf_page import parse_page_html


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2401.01234", "2401.01234"),
        ("2401.01234v2", "2401.01234"),
        ("arXiv:2401.01234v12", "2401.01234"),
        ("  2305.6349 ", "2305.6349"),
        ("hep-th/9901001v1", "hep-th/9901001"),
        ("2401.012", None),
        ("1501.0123v1", "1501.0123"),
        ("not an id", None),
        ("", None),
        (None, None),
    ],
)
def test_arxiv_ids_lose_their_version(raw: str | None, expected: str | None) -> None:
    assert arxiv_id(raw) == expected


def test_title_key_ignores_wrapping_case_punctuation_and_accents() -> None:
    wrapped = "RECKONING: Reasoning through\n  Dynamic Knowledge Encoding"
    assert title_key(wrapped) == title_key(
        "reckoning — reasoning through dynamic knowledge encoding"
    )
    assert title_key("Café: Naïve Bayes") == title_key("CAFE NAIVE BAYES")
    assert title_key("\uff26\uff55\uff4c\uff4c") == "full"  # fullwidth forms
    assert title_key("Mixture-of-Experts") != title_key("Mixture of Expert")


def test_key_is_the_arxiv_id_else_a_stable_title_hash() -> None:
    assert paper_key("2401.01234", "Anything") == "2401.01234"
    by_title = paper_key(None, "Successor Heads:  Recurring, Interpretable Attention Heads")
    assert by_title.startswith("title:") and len(by_title) == len("title:") + 16
    assert by_title == paper_key(None, "successor heads recurring interpretable attention heads")
    assert by_title != paper_key(None, "Successor Heads")


def test_whitespace_is_collapsed() -> None:
    assert normalize_whitespace("  a\n\t b\u00a0c  ") == "a b c"


HF = Path(__file__).parent / "fixtures" / "samples" / "hf"


def paper(title: str = "Attention Is All You Need", **fields: Any) -> Paper:
    return Paper(title=title, **fields)


def test_same_arxiv_id_with_version_suffix_is_one_paper() -> None:
    merged = merge_papers(
        [
            paper(arxiv_id="1706.03762v1", sources=("a",)),
            paper(arxiv_id="1706.03762v5", sources=("b",)),
        ]
    )
    assert len(merged) == 1
    assert merged[0].sources == ("a", "b")


def test_title_rewrapping_case_punctuation_and_unicode_forms_match() -> None:
    titles = [
        "Attention Is All You Need",
        "attention is\n  all you need.",
        "ATTENTION — IS ALL YOU NEED",
        "Attention\u00a0Is All You Need!",
    ]
    merged = merge_papers(paper(t, sources=(str(i),)) for i, t in enumerate(titles))
    assert len(merged) == 1
    assert merged[0].sources == ("0", "1", "2", "3")
    assert merged[0].title == "Attention Is All You Need"
    assert len(merge_papers([paper("Café au lait"), paper("Cafe\u0301 au lait")])) == 1


def test_title_only_record_and_id_record_merge_in_either_order() -> None:
    text = paper(abstract="short", author_count=8, published=dt.date(2017, 6, 12), sources=("t",))
    api = paper(
        arxiv_id="1706.03762",
        abstract="a much longer abstract",
        authors=("Ashish Vaswani", "Noam Shazeer"),
        upvotes=3,
        url="https://huggingface.co/papers/1706.03762",
        sources=("api",),
    )
    for first, second in ((text, api), (api, text)):
        (merged,) = merge_papers([first, second])
        assert merged.arxiv_id == "1706.03762"
        assert merged.key == "1706.03762"
        assert merged.abstract == "a much longer abstract"
        assert merged.authors == ("Ashish Vaswani", "Noam Shazeer")
        assert merged.author_count == 8
        assert merged.published == dt.date(2017, 6, 12)
        assert merged.upvotes == 3
        assert merged.url == "https://huggingface.co/papers/1706.03762"
        assert set(merged.sources) == {"t", "api"}
        assert merged.sources[0] == first.sources[0]


def test_different_ids_under_the_same_title_stay_two_papers() -> None:
    merged = merge_papers(
        [paper(arxiv_id="2401.00001"), paper(arxiv_id="2402.00002"), paper(sources=("text",))]
    )
    assert [p.arxiv_id for p in merged] == ["2401.00001", "2402.00002"]
    # the id-less copy joins the first paper of that title, it is not a third paper
    assert merged[0].sources == ("text",)


def test_order_is_first_appearance_and_entries_are_not_lost() -> None:
    papers = [paper("B"), paper("A"), paper("b"), paper("C"), paper("a")]
    assert [p.title for p in merge_papers(papers)] == ["B", "A", "C"]


def test_richest_fields_win() -> None:
    a = paper(upvotes=5, github_stars=1, ai_summary="short", organization=None, sources=("a",))
    b = paper(
        upvotes=2,
        github_stars=9,
        ai_summary="a longer summary",
        organization="Google",
        ai_keywords=("attention",),
        github_repo="https://github.com/x/y",
        project_page="https://x.example",
        sources=("b", "a"),
    )
    merged = merge_two(a, b)
    assert (merged.upvotes, merged.github_stars) == (5, 9)
    assert merged.ai_summary == "a longer summary"
    assert merged.organization == "Google"
    assert merged.ai_keywords == ("attention",)
    assert merged.github_repo == "https://github.com/x/y"
    assert merged.project_page == "https://x.example"
    assert merged.sources == ("a", "b")


def test_merge_two_can_keep_the_first_key_for_the_store() -> None:
    stored = paper(key="title:0123456789abcdef")
    fresh = paper(arxiv_id="1706.03762")
    assert merge_two(stored, fresh).key == "1706.03762"
    assert merge_two(stored, fresh, keep_key=True).key == "title:0123456789abcdef"


def test_page_cards_and_api_json_of_the_same_day_merge_completely() -> None:
    page = (HF / "page_2024-08-01.html").read_text(encoding="utf-8")
    props = page.split('data-target="DailyPapers" data-props="', 1)[1].split('"', 1)[0]
    cards = parse_page_html(page.replace(props, ""), origin="cards")
    entries = json.loads(html.unescape(props))["dailyPapers"]
    api = parse_api(json.dumps(entries), origin="api")
    merged = merge_papers([*cards, *api])
    assert len(merged) == 13
    assert all(p.sources == ("cards", "api") and p.abstract for p in merged)


class _OneStored:
    """A Known holding one paper stored under a title key, as a store would."""

    def __init__(self, paper: Paper) -> None:
        self.stored = paper

    def has(self, key: str) -> bool:
        return key == self.stored.key

    def paper(self, key: str) -> Paper | None:
        return self.stored if key == self.stored.key else None

    def key_of_arxiv(self, arxiv: str) -> str | None:
        return self.stored.key if arxiv == self.stored.arxiv_id else None

    def keys_of_title(self, title: str) -> list[tuple[str, str | None]]:
        stored = self.stored
        return [(stored.key, stored.arxiv_id)] if title == stored.title_key else []


def test_a_resolver_with_stable_keys_keeps_the_stored_key_and_merges_the_record() -> None:
    stored = paper("Order Matters: Sequence to sequence for sets", abstract="short")
    resolver = Resolver(_OneStored(stored), stable_keys=True)
    resolved = resolver.add(
        paper("ORDER MATTERS: sequence to sequence for sets", arxiv_id="1511.06391v4")
    )
    fresh = resolver.add(paper("Something else entirely"))
    assert (resolved.new, resolved.paper.key, resolved.paper.arxiv_id) == (
        False,
        stored.key,
        "1511.06391",
    )
    assert fresh.new and [e.paper.key for e in resolver.entries()] == [stored.key, fresh.paper.key]


def test_a_batch_resolver_rekeys_a_title_only_paper_once_its_id_is_known() -> None:
    resolver = Resolver()
    resolver.add(paper("Memory Mosaics"))
    resolver.add(paper("memory mosaics", arxiv_id="2405.06394"))
    resolver.add(paper("Memory  Mosaics", upvotes=3))
    (only,) = resolver.entries()
    assert only.paper.key == "2405.06394" and only.paper.upvotes == 3 and only.new
