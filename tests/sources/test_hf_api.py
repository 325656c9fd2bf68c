"""The Daily Papers JSON API: every schema era of the samples, optional fields, bad entries."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from digest.errors import ParseError
from digest.sources.hf_api import parse_api

HF = Path(__file__).parent.parent / "fixtures" / "samples" / "hf"
API_SAMPLES = sorted(HF.glob("api_*.json"))


def entry(**paper: Any) -> dict[str, Any]:
    return {"paper": {"id": "2401.00001", "title": "A Title", **paper}}


def test_there_are_four_eras_of_samples() -> None:
    assert [p.name for p in API_SAMPLES] == [
        "api_2024-03-21.json",
        "api_2025-03-24.json",
        "api_2025-10-06.json",
        "api_2026-07-31_limit30.json",
    ]


@pytest.mark.parametrize("path", API_SAMPLES, ids=lambda p: p.name)
def test_every_entry_is_read_with_id_authors_and_upvotes(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    papers = parse_api(path.read_text(encoding="utf-8"), origin=str(path))
    assert len(papers) == len(raw) > 0
    for paper, item in zip(papers, raw, strict=True):
        assert paper.arxiv_id == item["paper"]["id"]
        assert paper.key == item["paper"]["id"]
        assert paper.url == f"https://huggingface.co/papers/{item['paper']['id']}"
        assert paper.authors == tuple(" ".join(a["name"].split()) for a in item["paper"]["authors"])
        assert paper.upvotes == item["paper"]["upvotes"]
        assert paper.published == dt.date.fromisoformat(item["paper"]["publishedAt"][:10])
        assert "\n" not in paper.title and "  " not in paper.abstract
        assert len(paper.abstract) > 100
        assert paper.sources == (str(path),)


def test_2024_era_has_only_the_basics() -> None:
    papers = parse_api((HF / "api_2024-03-21.json").read_text(encoding="utf-8"), origin="a")
    first = papers[0]
    assert first.title == "Mora: Enabling Generalist Video Generation via A Multi-Agent Framework"
    assert (first.upvotes, first.author_count, first.published) == (47, 7, dt.date(2024, 3, 20))
    assert first.ai_summary is None and first.github_repo is None and first.organization is None


def test_hard_wrapped_title_is_normalised() -> None:
    papers = parse_api((HF / "api_2025-03-24.json").read_text(encoding="utf-8"), origin="a")
    assert papers[-1].title == (
        "When Less is Enough: Adaptive Token Reduction for Efficient Image Representation"
    )
    assert papers[-1].abstract.startswith(
        "Vision encoders typically generate a large number of visual tokens, providing "
        "information-rich representations"
    )
    assert papers[0].github_repo == "https://github.com/exoskeletonzj/MAPS"


def test_2025_10_era_ai_fields_and_organization() -> None:
    papers = parse_api((HF / "api_2025-10-06.json").read_text(encoding="utf-8"), origin="a")
    epic = papers[0]
    assert epic.arxiv_id == "2510.00515"
    assert epic.organization == "Shanghai Jiao Tong University"
    assert epic.github_stars == 4
    assert epic.project_page == "https://zichenwen1.github.io/EPIC"
    assert epic.ai_summary is not None and epic.ai_summary.startswith("EPIC, a progressive")
    assert epic.ai_keywords[:2] == ("visual tokens", "multi-modal large models")


def test_2026_era() -> None:
    papers = parse_api((HF / "api_2026-07-31_limit30.json").read_text(encoding="utf-8"), origin="a")
    last = papers[-1]
    assert last.arxiv_id == "2607.28568"
    assert (last.upvotes, last.author_count, last.github_stars) == (168, 24, 111)
    assert last.organization == "Frontis AI"
    assert last.published == dt.date(2026, 7, 30)


def test_hidden_authors_are_dropped_but_counted() -> None:
    authors = [
        {"name": "Ada Lovelace", "hidden": False},
        {"name": "Hidden Person", "hidden": True},
        {"name": "Charles  Babbage"},
    ]
    (paper,) = parse_api(json.dumps([entry(authors=authors)]), origin="a")
    assert paper.authors == ("Ada Lovelace", "Charles Babbage")
    assert paper.author_count == 3


def test_only_id_and_title_are_required() -> None:
    (paper,) = parse_api(
        json.dumps([{"paper": {"id": "2401.00001v2"}, "title": "Top"}]), origin="a"
    )
    assert (paper.arxiv_id, paper.title, paper.abstract, paper.authors) == (
        "2401.00001",
        "Top",
        "",
        (),
    )
    assert paper.published is None and paper.upvotes is None


def test_odd_field_types_are_ignored_not_fatal() -> None:
    odd = entry(upvotes="many", authors="nobody", ai_keywords=[1, "kw"], githubStars=True)
    (paper,) = parse_api(json.dumps([odd]), origin="a")
    assert (paper.upvotes, paper.authors, paper.ai_keywords, paper.github_stars) == (
        None,
        (),
        ("kw",),
        None,
    )


def test_saved_page_props_object_is_accepted() -> None:
    papers = parse_api(json.dumps({"dailyPapers": [entry()], "date": "x"}), origin="a")
    assert [p.arxiv_id for p in papers] == ["2401.00001"]


@pytest.mark.parametrize(
    ("body", "message", "where"),
    [
        ('{"error": "x"}', "expected a JSON array of entries, got a JSON object", "f.json"),
        ("[1, 2", "not valid JSON", "f.json"),
        ('[{"title": "no paper"}]', "has no `paper` object", "f.json: entry [0]"),
        ('[{"paper": {"title": "T"}}]', "has no `paper.id`", "f.json: entry [0]"),
        ('[{"paper": {"id": "1"}}, {"paper": {"id": "2"}}]', "has no title", "f.json: entry [0]"),
    ],
)
def test_malformed_responses_name_the_file_and_the_entry(
    body: str, message: str, where: str
) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_api(body, origin="f.json")
    assert info.value.where == where
    assert info.value.hint


def test_python_repr_strings_sample_is_rejected_with_an_explanation() -> None:
    path = HF / "bad_2024-12-11_repr_strings.json"
    with pytest.raises(ParseError, match="Python repr") as info:
        parse_api(path.read_text(encoding="utf-8"), origin=str(path))
    assert info.value.where == f"{path}: entry [0]"
    assert info.value.hint is not None and "/api/daily_papers" in info.value.hint


def test_only_http_links_and_a_safe_paper_url_are_kept() -> None:
    hostile = entry(githubRepo="javascript:alert(1)", projectPage=" data:text/html,x")
    hostile["paper"]["id"] = '2401.00001"><script>'
    (paper,) = parse_api(json.dumps([hostile]), origin="a")
    assert paper.github_repo is None and paper.project_page is None
    assert paper.url == "https://huggingface.co/papers/2401.00001%22%3E%3Cscript%3E"
    (fine,) = parse_api(json.dumps([entry(githubRepo="https://github.com/a/b")]), origin="a")
    assert fine.github_repo == "https://github.com/a/b"
