"""A paper's identity: versionless arXiv ids, title keys that survive re-wrapping, the key."""

from __future__ import annotations

import pytest

from digest.keys import arxiv_id, normalize_whitespace, paper_key, title_key


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
