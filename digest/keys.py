"""A paper's identity: arXiv id and title normalisation, and the canonical key built from them."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_ARXIV_ID = re.compile(
    r"^(?:arxiv:)?(?P<id>\d{4}\.\d{4,5}|[a-z][a-z.\-]*/\d{7})(?:v\d+)?$", re.IGNORECASE
)
_NOT_WORD = re.compile(r"[\W_]+")


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace (hard wraps, tabs, NBSP) into single spaces and trim."""
    return " ".join(text.split())


def arxiv_id(raw: str | None) -> str | None:
    """The versionless arXiv id in ``raw`` (``2401.01234v2`` -> ``2401.01234``), or None."""
    if not raw:
        return None
    match = _ARXIV_ID.match(raw.strip())
    return match.group("id").lower() if match else None


def title_key(title: str) -> str:
    """A title reduced to what survives re-wrapping, re-casing, punctuation and unicode forms."""
    decomposed = unicodedata.normalize("NFKD", title)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", without_marks.casefold()).split())


def paper_key(arxiv: str | None, title: str) -> str:
    """The canonical key: the arXiv id when known, else a short hash of the title key."""
    if arxiv:
        return arxiv
    digest = hashlib.sha1(title_key(title).encode("utf-8")).hexdigest()[:16]
    return f"title:{digest}"
