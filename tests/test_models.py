"""The value types: whitespace normalised, keys filled, immutable, strict."""

from __future__ import annotations

import pydantic
import pytest

from digest.models import Match, Paper, Span


def test_paper_normalises_and_fills_its_key() -> None:
    paper = Paper(
        arxiv_id="2305.06349v3",
        title="RECKONING:\n  Reasoning  through Dynamic Knowledge Encoding",
        abstract="Recent studies\n  on transformers.",
        authors=["Zeming  Chen", " ", "Gail Weiss"],
        ai_keywords=["bi-level\nlearning"],
    )
    assert paper.key == paper.arxiv_id == "2305.06349"
    assert paper.title == "RECKONING: Reasoning through Dynamic Knowledge Encoding"
    assert paper.abstract == "Recent studies on transformers."
    assert paper.authors == ("Zeming Chen", "Gail Weiss") and paper.author_count == 2
    assert paper.ai_keywords == ("bi-level learning",)
    assert paper.hf_url == "https://huggingface.co/papers/2305.06349"
    assert paper.pdf_url == "https://arxiv.org/pdf/2305.06349"


def test_paper_without_id_is_keyed_by_title_and_has_no_links() -> None:
    paper = Paper(title="Memory Mosaics")
    assert paper.key.startswith("title:")
    assert paper.key == Paper(title="memory  mosaics").key
    assert paper.hf_url is None and paper.arxiv_url is None


def test_papers_are_frozen_strict_and_need_a_title() -> None:
    paper = Paper(title="x")
    with pytest.raises(pydantic.ValidationError):
        paper.title = "y"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Paper(title="x", colour="red")  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError, match="needs a title"):
        Paper(title="  \n ")


def test_match_carries_spans_within_one_field() -> None:
    paper = Paper(title="Agents at work", abstract="An agent.")
    match = Match(
        paper=paper,
        keywords=("agent",),
        in_title=True,
        spans=(Span(field="title", start=0, end=6),),
    )
    assert paper.title[match.spans[0].start : match.spans[0].end] == "Agents"
    with pytest.raises(pydantic.ValidationError):
        Span(field="authors", start=0, end=1)
