"""Daily Papers page HTML: data-props JSON, the card fallback, markup variations, truncation."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import pytest

from digest.errors import ParseError
from digest.models import Paper
from digest.sources.hf_page import parse_page_html

PAGE = Path(__file__).parent.parent / "fixtures" / "samples" / "hf" / "page_2024-08-01.html"
WIDGET_PROPS = re.compile(r'(data-target="DailyPapers") data-props="[^"]*"')


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def without_props(page: str) -> str:
    stripped, count = WIDGET_PROPS.subn(r"\1", page)
    assert count == 1
    return stripped


def summary(papers: list[Paper]) -> list[tuple[str | None, str, int | None, int | None]]:
    return [(p.arxiv_id, p.title, p.upvotes, p.author_count) for p in papers]


def test_data_props_give_13_complete_papers(page: str) -> None:
    papers = parse_page_html(page, origin="page.html")
    assert len(papers) == 13
    llama = papers[0]
    assert (llama.arxiv_id, llama.title, llama.upvotes) == (
        "2407.21783",
        "The Llama 3 Herd of Models",
        94,
    )
    assert llama.author_count == 533
    assert llama.published == dt.date(2024, 7, 31)
    assert llama.abstract.startswith("Modern artificial intelligence (AI) systems are powered")
    assert llama.url == "https://huggingface.co/papers/2407.21783"
    assert all(p.sources == ("page.html",) and len(p.abstract) > 100 for p in papers)


def test_cards_give_the_same_13_papers_when_the_json_is_absent(page: str) -> None:
    from_json = parse_page_html(page, origin="page.html")
    from_cards = parse_page_html(without_props(page), origin="page.html")
    assert summary(from_cards) == summary(from_json)
    assert len({p.arxiv_id for p in from_cards}) == 13
    assert all(p.abstract == "" for p in from_cards)  # the cards carry no abstracts


def test_hidden_author_counts_like_the_site_shows_it(page: str) -> None:
    humanoid = next(p for p in parse_page_html(page, origin="p") if p.arxiv_id == "2407.21781")
    # one of the six authors is hidden: not listed, but the card says "6 authors"
    assert humanoid.author_count == 6
    assert len(humanoid.authors) == 5


def test_broken_json_falls_back_to_the_cards(page: str) -> None:
    broken = WIDGET_PROPS.sub(r'\1 data-props="{&quot;dailyPapers&quot;: [{"', page)
    papers = parse_page_html(broken, origin="p")
    assert [p.arxiv_id for p in papers] == [p.arxiv_id for p in parse_page_html(page, origin="p")]


def test_attribute_order_and_nesting_do_not_matter(page: str) -> None:
    props = re.search(r'data-target="DailyPapers" data-props="([^"]*)"', page)
    assert props is not None
    data = json.loads(html.unescape(props.group(1)))
    data["dateString"] = data.pop("date")[:10]
    reordered = (
        "<!doctype html><html><body><section><div><div "
        f'data-props="{html.escape(json.dumps(data))}" '
        'data-target="DailyPapers" class="contents SVELTE_HYDRATER"></div></div></section>'
        "</body></html>"
    )
    papers = parse_page_html(reordered, origin="p")
    assert summary(papers) == summary(parse_page_html(page, origin="p"))


def test_page_date_is_the_fallback_publication_date() -> None:
    props = {
        "dateString": "2026-01-05",
        "dailyPapers": [{"paper": {"id": "2601.00001"}, "title": "T"}],
    }
    widget = f"<div data-target=\"DailyPapers\" data-props='{json.dumps(props)}'></div>"
    page = f"<html><body>{widget}</body></html>"
    (paper,) = parse_page_html(page, origin="p")
    assert paper.published == dt.date(2026, 1, 5)


def test_cut_off_downloads_never_pass_for_a_shorter_page(page: str) -> None:
    complete = summary(parse_page_html(page, origin="p"))
    bare = without_props(page)
    for text in (page, bare):
        for cut in range(len(text) // 10, len(text) - 20, len(text) // 10):
            try:
                papers = parse_page_html(text[:cut], origin="cut.html")
            except ParseError as exc:
                assert exc.where == "cut.html"
                continue
            # only the JSON, read whole before the cut, may still answer
            assert summary(papers) == complete


def test_truncated_card_page_is_reported(page: str) -> None:
    bare = without_props(page)
    cut = bare[: bare.index("<article", bare.index("<article") + 1)]
    with pytest.raises(ParseError, match="truncated") as info:
        parse_page_html(cut, origin="cut.html")
    assert info.value.where == "cut.html"
    assert info.value.hint


def test_html_page_that_is_not_daily_papers() -> None:
    text = (
        Path(__file__).parent.parent / "fixtures" / "sources" / "not_daily_papers.html"
    ).read_text()
    with pytest.raises(ParseError, match="no Daily Papers found") as info:
        parse_page_html(text, origin="model.html")
    assert info.value.where == "model.html"


API_DAY = PAGE.parent / "api_2025-10-06.json"


def paper_page(paper: dict[str, object]) -> str:
    """A paper's own page: the real page's shell, its content widget holding one real paper
    (``data-target="PaperContent"``, the props HTML-escaped as the server writes them)."""
    props = html.escape(json.dumps({"paper": paper, "canonicalUrl": "x"}), quote=True)
    widget = (
        f'<div class="SVELTE_HYDRATER contents" data-target="PaperContent" data-props="{props}">'
    )
    shell = PAGE.read_text(encoding="utf-8")
    return (
        WIDGET_PROPS.sub("", shell)
        .replace("<body", widget + "</div><body", 1)
        .replace('data-target="DailyPapers"', 'data-target="Other"')
    )


def test_a_single_papers_page_reads_as_that_paper() -> None:
    raw = json.loads(API_DAY.read_text(encoding="utf-8"))[0]["paper"]
    (paper,) = parse_page_html(paper_page(raw), origin="2510.00515.html")
    assert paper.arxiv_id == raw["id"] == "2510.00515"
    assert paper.title == " ".join(raw["title"].split())
    assert paper.abstract == " ".join(raw["summary"].split())
    assert paper.ai_summary == raw["ai_summary"] and paper.upvotes == raw["upvotes"]
    assert paper.url == "https://huggingface.co/papers/2510.00515"
