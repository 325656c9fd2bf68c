"""Format sniffing: every sample is recognised by content; bad input is a ParseError, never []."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.errors import ParseError
from digest.sources.sniff import parse_document

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAMPLES = FIXTURES / "samples"
BAD = FIXTURES / "sources"
TODAY = dt.date(2025, 12, 20)


@pytest.mark.parametrize(
    ("path", "count", "has_ids"),
    [
        *[(p, None, False) for p in sorted((SAMPLES / "text-pages").glob("*.txt"))],
        *[(p, None, True) for p in sorted((SAMPLES / "hf").glob("api_*.json"))],
        (SAMPLES / "hf" / "page_2024-08-01.html", 13, True),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else str(v),
)
def test_samples_are_recognised_whatever_their_extension(
    path: Path, count: int | None, has_ids: bool, tmp_path: Path
) -> None:
    renamed = tmp_path / "download.dat"
    renamed.write_bytes(path.read_bytes())
    papers = parse_document(renamed.read_bytes(), origin=str(renamed), today=TODAY)
    assert papers
    assert count is None or len(papers) == count
    assert all((p.arxiv_id is not None) == has_ids for p in papers)


def test_byte_order_mark_is_ignored() -> None:
    data = (SAMPLES / "text-pages" / "000_a074cbbb5062396c.txt").read_bytes()
    assert len(parse_document(b"\xef\xbb\xbf" + data, origin="bom.txt", today=TODAY)) == 5


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (SAMPLES / "hf" / "bad_2024-12-11_repr_strings.json", "Python repr string"),
        (BAD / "empty.html", "the file is empty"),
        (BAD / "binary.txt", "binary file"),
        (BAD / "not_daily_papers.html", "no Daily Papers found"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else "",
)
def test_bad_files_name_the_file_and_the_problem(path: Path, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_document(path.read_bytes(), origin=str(path), today=TODAY)
    assert info.value.where is not None and info.value.where.startswith(str(path))
    assert info.value.hint


def test_truncated_html_page() -> None:
    page = (SAMPLES / "hf" / "page_2024-08-01.html").read_bytes()
    with pytest.raises(ParseError, match="truncated"):
        parse_document(page[: len(page) // 3], origin="cut.html", today=TODAY)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"   \n\n\t ", "the file is empty"),
        (b"Dear colleague,\nhere are some thoughts.\n", "not a Daily Papers format"),
        ("caf\u00e9".encode("latin-1"), "not UTF-8"),
    ],
)
def test_other_unusable_content(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_document(data, origin="x", today=TODAY)
    assert info.value.where == "x"
