"""Paper text for the email: excerpts that keep highlight offsets valid, and `<mark>` highlights.

Everything here works on plain strings and returns either plain strings (for the text part) or
``Markup`` built segment by segment with ``markupsafe.escape``, so a highlight can never land
inside a tag, an attribute or a URL, and no source text is ever trusted as markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from markupsafe import Markup, escape

from digest.models import Span

# Sentence ends: ., ! or ? (optionally closed by a quote or bracket) followed by whitespace and
# something that can start a sentence. Abbreviations like "e.g. the" are not split because the
# next word is lower-case; "et al. The" is, which costs nothing worse than a shorter excerpt.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")


def merge_spans(spans: Iterable[Span], field: str, length: int) -> list[tuple[int, int]]:
    """The ``field`` spans as sorted, non-overlapping ``(start, end)`` ranges within ``length``."""
    ranges = sorted(
        (max(0, s.start), min(length, s.end)) for s in spans if s.field == field and s.end > s.start
    )
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, ranges: Sequence[tuple[int, int]]) -> Markup:
    """``text`` escaped, with each ``(start, end)`` range wrapped in ``<mark>``.

    Ranges come from :func:`merge_spans` (sorted, disjoint, clipped); every segment is escaped
    on its own, so the marks are the only markup in the result.
    """
    out: list[str] = []
    pos = 0
    for start, end in ranges:
        if start < pos or end > len(text):
            continue
        out.append(str(escape(text[pos:start])))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


class Excerpt(NamedTuple):
    """A prefix of a text (so highlight offsets stay valid) and how it was cut."""

    text: str
    cut: bool
    ellipsis: bool


def shorten(text: str, sentences: int, max_chars: int) -> Excerpt:
    """The first ``sentences`` sentences of ``text``, at most ``max_chars`` long.

    A cut inside a sentence falls on a word boundary and asks for an ellipsis; the kept text is
    always a prefix of ``text``.
    """
    if sentences <= 0 or max_chars <= 0:
        return Excerpt("", bool(text), False)
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    cut = ends[sentences - 1] if len(ends) >= sentences else len(text)
    if cut <= max_chars:
        return Excerpt(text[:cut], cut < len(text), False)
    whole = [end for end in ends[:sentences] if end <= max_chars]
    if whole and whole[-1] > max_chars // 2:
        return Excerpt(text[: whole[-1]], True, False)
    space = text.rfind(" ", 0, max_chars)
    cut = space if space > max_chars // 2 else max_chars
    return Excerpt(text[:cut].rstrip(" ,;:-"), True, True)
