"""Saved text pages: both layouts, every metadata variant, yearless dates, counts across pages."""

from __future__ import annotations

import datetime as dt
import os
from functools import partial
from pathlib import Path

import pytest

from digest.config import parse_config
from digest.errors import ParseError
from digest.identity import merge_papers
from digest.models import Paper
from digest.sources import ReadContext, read_sources
from digest.sources.local import read_regular_file
from digest.sources.text_page import parse_text_page

PAGES = Path(__file__).parent.parent / "fixtures" / "samples" / "text-pages"
TODAY = dt.date(2025, 12, 20)


def read(stem: str, today: dt.date = TODAY) -> list[Paper]:
    (path,) = PAGES.glob(f"{stem}_*.txt")
    return parse_text_page(path.read_text(encoding="utf-8"), origin=str(path), today=today)


def by_title(papers: list[Paper], title: str) -> Paper:
    (paper,) = [p for p in papers if p.title == title]
    return paper


@pytest.mark.parametrize(
    ("stem", "count"), [("000", 5), ("001", 21), ("002", 73), ("003", 42), ("004", 43)]
)
def test_each_page_gives_every_paper_once(stem: str, count: int) -> None:
    papers = read(stem)
    assert len(papers) == count
    for paper in papers:
        # a title/abstract mix-up would put a long abstract in the title or a title in the abstract
        assert 10 <= len(paper.title) <= 150
        assert len(paper.abstract) > 300
        assert paper.arxiv_id is None
        assert paper.sources == (str(next(PAGES.glob(f"{stem}_*.txt"))),)


def test_five_pages_give_184_entries_and_178_papers() -> None:
    entries = [p for stem in ("000", "001", "002", "003", "004") for p in read(stem)]
    merged = merge_papers(entries)
    assert len(entries) == 184
    assert len(merged) == 178
    repeated = sorted(p.title for p in merged if len(p.sources) > 1)
    assert repeated == [
        "Analyzing Transformer Dynamics as Movement through Embedding Space",
        "Circuit Component Reuse Across Tasks in Transformer Language Models",
        "Interpreting and Improving Large Language Models in Arithmetic Calculation",
        "On Giant's Shoulders: Effortless Weak to Strong by Dynamic Logits Fusion",
        "RECKONING: Reasoning through Dynamic Knowledge Encoding",
        "Successor Heads: Recurring, Interpretable Attention Heads In The Wild",
    ]


def test_authors_and_full_date() -> None:
    paper = read("000")[0]
    assert paper.title == "Analyzing Transformer Dynamics as Movement through Embedding Space"
    assert paper.abstract.startswith("Transformer based language models exhibit intelligent")
    assert paper.author_count == 1
    assert paper.published == dt.date(2023, 8, 21)
    assert paper.upvotes is None
    assert paper.organization is None


def test_yearless_date_with_upvotes_takes_the_page_year() -> None:
    paper = by_title(
        read("001"),
        "CORRECT: COndensed eRror RECognition via knowledge Transfer in multi-agent systems",
    )
    assert paper.author_count == 7
    assert paper.published == dt.date(2025, 9, 28)
    assert paper.upvotes == 2


def test_yearless_dates_roll_back_when_the_page_date_would_be_in_the_future() -> None:
    # The page says "Dec 12": on 2025-12-01 that can only be 2024-12-12, and so its "Sep 28" too.
    papers = read("001", today=dt.date(2025, 12, 1))
    paper = by_title(
        papers, "CORRECT: COndensed eRror RECognition via knowledge Transfer in multi-agent systems"
    )
    assert paper.published == dt.date(2024, 9, 28)


def test_full_date_followed_by_upvotes() -> None:
    papers = read("001")
    moto = by_title(
        papers, "Moto: Latent Motion Token as the Bridging Language for Robot Manipulation"
    )
    assert (moto.published, moto.upvotes, moto.author_count) == (dt.date(2024, 12, 5), 2, 7)


def test_organisation_line_instead_of_authors() -> None:
    papers = read("003")
    openbmb = by_title(
        papers, "Configurable Foundation Models: Building LLMs from a Modular Perspective"
    )
    assert openbmb.organization == "OpenBMB"
    assert openbmb.author_count is None
    assert (openbmb.published, openbmb.upvotes) == (dt.date(2024, 9, 4), 2)
    sqa = by_title(
        papers,
        "Sparse Query Attention (SQA): A Computationally Efficient Attention Mechanism with "
        "Query Heads Reduction",
    )
    assert sqa.organization == "Reactive AI"
    assert (sqa.published, sqa.upvotes) == (dt.date(2025, 10, 2), 2)


def test_paper_without_metadata_between_papers_with_it() -> None:
    papers = read("003")
    titles = [p.title for p in papers]
    i = titles.index(
        "Thinking Sparks!: Emergent Attention Heads in Reasoning Models During Post Training"
    )
    bare, after = papers[i], papers[i + 1]
    assert (bare.author_count, bare.published, bare.upvotes) == (None, None, None)
    assert bare.abstract.startswith("The remarkable capabilities of modern large reasoning models")
    assert after.title == "MoH: Multi-Head Attention as Mixture-of-Head Attention"
    assert (after.author_count, after.published, after.upvotes) == (4, dt.date(2024, 10, 15), 2)


def test_page_without_any_metadata() -> None:
    papers = read("002")
    assert (
        papers[0].title
        == "Stabilizing Transformer Training by Preventing Attention Entropy Collapse"
    )
    assert papers[0].abstract.startswith(
        "Training stability is of great importance to Transformers."
    )
    assert all(p.published is None and p.author_count is None for p in papers)
    embers = by_title(
        papers,
        "Embers of Autoregression: Understanding Large Language Models Through the Problem They "
        "are Trained to Solve",
    )
    assert embers.abstract.startswith("The widespread adoption of large language models (LLMs)")


def test_one_line_layout_with_subscribe_glued_to_the_first_title() -> None:
    papers = read("004")
    assert papers[0].title == "LLM Circuit Analyses Are Consistent Across Training and Scale"
    assert papers[0].abstract.startswith("Most currently deployed large language models (LLMs)")
    assert (
        papers[1].title == "Successor Heads: Recurring, Interpretable Attention Heads In The Wild"
    )
    assert papers[-1].title == "Iterative SE(3)-Transformers"
    assert papers[-1].abstract.endswith(
        "We make the code for our implementation available to the community."
    )


def test_header_only_is_an_error_not_an_empty_page() -> None:
    text = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\nNov 5\n"
    with pytest.raises(ParseError, match="no papers") as info:
        parse_text_page(text, origin="page.txt", today=TODAY)
    assert info.value.where == "page.txt"


def test_title_without_abstract_at_the_end_is_reported() -> None:
    text = "Daily Papers\n\nbyAK and the research community\n\nA Title\n\nAn abstract.\n\nCut Off\n"
    with pytest.raises(ParseError, match="no abstract") as info:
        parse_text_page(text, origin="page.txt", today=TODAY)
    assert info.value.where == "page.txt: line 9"


def saved_page(folder: Path, header_date: str, saved: dt.date) -> Path:
    """A real saved page (000) with its page date replaced, written on ``saved``."""
    text = (PAGES / "000_a074cbbb5062396c.txt").read_text(encoding="utf-8")
    path = folder / "page.txt"
    path.write_text(text.replace("\nNov 5\n", f"\n{header_date}\n", 1), encoding="utf-8")
    stamp = dt.datetime(saved.year, saved.month, saved.day, 12, tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def read_page(path: Path, today: dt.date) -> list[Paper]:
    (source,) = parse_config(
        f'[[sources]]\nkind = "page"\npath = "{path}"\n', path.with_suffix(".toml")
    ).sources
    context = ReadContext(
        today=today,
        download=lambda url: b"",
        read_file=partial(read_regular_file, max_bytes=10_000_000),
        resolve=Path,
    )
    batch = read_sources([source], context)  # type: ignore[list-item]
    assert batch.failures == ()
    return list(batch.papers)


def test_a_page_saved_last_year_keeps_last_years_dates(tmp_path: Path) -> None:
    # saved on 2025-11-07, read on 2026-12-01: "Nov 5" is 2025-11-05, not 2026-11-05
    papers = read_page(saved_page(tmp_path, "Nov 5", dt.date(2025, 11, 7)), dt.date(2026, 12, 1))
    dated = {p.title[:30]: p.published for p in papers if p.published}
    assert dt.date(2025, 8, 22) in dated.values()  # "Aug 22": before the page, in its year
    assert dt.date(2023, 8, 21) in dated.values()  # "Aug 21, 2023": shown with its year
    assert all(day <= dt.date(2025, 11, 5) for day in dated.values())


def test_a_page_date_with_its_year_is_taken_as_it_is(tmp_path: Path) -> None:
    saved = saved_page(tmp_path, "Nov 5, 2024", dt.date(2026, 1, 3))
    papers = read_page(saved, dt.date(2026, 12, 1))
    assert dt.date(2024, 8, 22) in {p.published for p in papers}


def test_a_file_dated_after_today_is_read_as_of_today(tmp_path: Path) -> None:
    papers = read_page(saved_page(tmp_path, "Nov 5", dt.date(2030, 1, 1)), dt.date(2026, 12, 1))
    assert dt.date(2026, 8, 22) in {p.published for p in papers}


def test_a_page_of_more_papers_than_max_entries_is_refused_as_it_is_read() -> None:
    from digest.sources.limits import Limits

    (path,) = PAGES.glob("002_*.txt")  # 73 papers
    text = path.read_text(encoding="utf-8")
    with pytest.raises(ParseError, match="more than the limit of 50 papers") as caught:
        parse_text_page(text, origin="p.txt", today=TODAY, limits=Limits(max_entries=50))
    assert "max_entries" in (caught.value.hint or "")
    assert (
        len(parse_text_page(text, origin="p.txt", today=TODAY, limits=Limits(max_entries=73))) == 73
    )
