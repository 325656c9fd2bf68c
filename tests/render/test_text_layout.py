"""The plain-text part laid out for 72 columns: a golden 12-paper digest (numbers 10 and up, ▲
counts), and the layout rules checked on every line of it."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest

from digest.render import Renderer
from tests.render.test_render import ADA, GOLDEN, api_papers, config, matches

WIDTH = 72
NBSP = "\u00a0"


@pytest.fixture(scope="module")
def text() -> str:
    papers = api_papers("api_2025-10-06.json") + api_papers("api_2024-03-21.json")
    found = matches(papers)[:12]
    assert len(found) == 12
    rendered = Renderer(config()).render(
        ADA, found, day=dt.date(2025, 10, 6), new_count=40, matched_count=15
    )
    return rendered.text


def test_golden_text_of_twelve_papers(text: str) -> None:
    golden = GOLDEN / "digest_12.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_no_line_is_wider_than_72_columns_but_for_an_unbreakable_url(text: str) -> None:
    for line in text.splitlines():
        if len(line) > WIDTH:
            found = re.fullmatch(r"(.*?)https?://\S+", line)
            assert found and len(found.group(1)) < WIDTH, line


def test_upvote_markers_never_leave_their_number(text: str) -> None:
    assert text.count(f"▲{NBSP}") >= 12
    assert "▲ " not in text  # a plain space could break there
    assert not any(line.rstrip().endswith("▲") for line in text.splitlines())


def test_numbers_one_to_twelve_share_one_indent(text: str) -> None:
    lines = text.splitlines()
    numbered = [n for n, line in enumerate(lines) if re.match(r"\d+\.\s", line)]
    assert len(numbered) == 24  # each paper in the overview and as a card
    for start in numbered:
        assert re.match(r"(\d\.  |1\d\. )\S", lines[start]), lines[start]  # "1.  " and "10. "
        following = lines[start + 1]
        if following.strip() and not re.match(r"\d+\.\s", following):
            assert following.startswith("    ") and following[4] != " ", following
