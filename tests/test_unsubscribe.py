"""Signed unsubscribe tokens: one subscriber of one list, never forged, altered or moved."""

from __future__ import annotations

import base64

import pytest

from digest.errors import ConfigError
from digest.unsubscribe import UnsubscribeLinks, links_from

SECRET = b"a-long-enough-secret-for-tests"
LINKS = UnsubscribeLinks("https://digest.example.org", SECRET, "papers.example.org")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def test_a_token_names_its_address_in_any_case() -> None:
    token = LINKS.token_for("Ada@Example.org ")
    assert LINKS.address_in(token) == "ada@example.org"
    assert token == LINKS.token_for("ada@example.org")
    assert LINKS.url_for("ada@example.org") == f"https://digest.example.org/u/{token}"


def test_tokens_of_two_subscribers_differ_and_cannot_be_swapped() -> None:
    ada, bob = LINKS.token_for("ada@example.org"), LINKS.token_for("bob@example.org")
    assert ada != bob
    # bob's address under ada's tag: a cross-subscriber token
    moved = f"{b64('bob@example.org')}.{ada.split('.')[1]}"
    assert LINKS.address_in(moved) is None


@pytest.mark.parametrize(
    "other",
    [
        UnsubscribeLinks(
            "https://digest.example.org", b"another-secret-entirely", "papers.example.org"
        ),
        UnsubscribeLinks("https://digest.example.org", SECRET, "another.list.example.org"),
    ],
)
def test_a_token_of_another_secret_or_list_is_refused(other: UnsubscribeLinks) -> None:
    assert LINKS.address_in(other.token_for("ada@example.org")) is None


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "no-dot-at-all",
        ".",
        f"{b64('ada@example.org')}.",
        f"{b64('ada@example.org')}.AAAAAAAAAAAAAAAAAAAAAA",
        "%%%.%%%",
        "é.é",
        "A" * 5000 + ".B",
    ],
)
def test_forged_tokens_are_refused(forged: str) -> None:
    assert LINKS.address_in(forged) is None


def test_every_altered_character_is_caught() -> None:
    token = LINKS.token_for("ada@example.org")
    for index, char in enumerate(token):
        if char == ".":
            continue
        changed = token[:index] + ("B" if char != "B" else "C") + token[index + 1 :]
        assert LINKS.address_in(changed) in (None, "ada@example.org")
        # a change that decodes to the same bytes is the same token; any other is refused
        if LINKS.address_in(changed) is not None:
            assert base64.urlsafe_b64decode(changed.split(".")[0] + "==") == b"ada@example.org"


def test_links_need_a_long_secret_from_the_environment() -> None:
    assert links_from(None, "DIGEST_SERVER_SECRET", None, {}) is None
    with pytest.raises(ConfigError, match=r"\$MY_SECRET is not set") as unset:
        links_from("https://d.example.org", "MY_SECRET", None, {})
    assert "secrets.token_urlsafe" in (unset.value.hint or "")
    with pytest.raises(ConfigError, match="fewer than 16"):
        links_from("https://d.example.org", "MY_SECRET", None, {"MY_SECRET": "short"})
    links = links_from("https://d.example.org", "MY_SECRET", None, {"MY_SECRET": "x" * 32})
    assert links is not None and links.address_in(links.token_for("a@b.org")) == "a@b.org"
