"""Papers cut into words once per run, whatever vocabulary later looks at them.

Each text field (title, abstract, AI summary, each AI keyword) becomes a :class:`TextField`: the
words' offsets, plain and folded forms, and which words are joined only by spaces or hyphens (a
phrase may span those, never other punctuation). :class:`TextCache` keeps them per paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from digest.models import Paper
from digest.terms import JOINERS, WORD, fold, name_words, plain, words

FieldName = Literal["title", "abstract", "ai_summary"]
FIELDS: tuple[FieldName, ...] = ("title", "abstract", "ai_summary")
AI_KEYWORDS_RANK = len(FIELDS)
NOT_IN_TEXT_RANK = AI_KEYWORDS_RANK + 1
_TEXT_CACHE_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class TextField:
    """One tokenised text field; ``name`` is None for AI keywords (matched, never highlighted)."""

    name: FieldName | None
    rank: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    plains: tuple[str, ...]
    keys: tuple[str, ...]
    joined: tuple[bool, ...]  # word p follows word p-1 with only spaces or hyphens between

    def phrase(self, first: int, last: int) -> bool:
        """Whether words ``first..last`` are one phrase: no other punctuation between them."""
        return all(self.joined[first + 1 : last + 1])


@dataclass(frozen=True, slots=True)
class PaperText:
    """A paper cut into words once, whatever vocabulary later looks at it."""

    fields: tuple[TextField, ...]
    authors: tuple[tuple[str, ...], ...]
    organizations: tuple[tuple[str, ...], ...]  # the paper's and its submitter's, CamelCase cut


def text_field(name: FieldName | None, rank: int, text: str) -> TextField:
    starts: list[int] = []
    ends: list[int] = []
    plains: list[str] = []
    joined: list[bool] = []
    for found in WORD.finditer(text):
        joined.append(bool(ends) and not text[ends[-1] : found.start()].strip(JOINERS))
        starts.append(found.start())
        ends.append(found.end())
        plains.append(plain(found.group()))
    keys = tuple(fold(w) for w in plains)
    return TextField(name, rank, tuple(starts), tuple(ends), tuple(plains), keys, tuple(joined))


def tokenise(paper: Paper) -> PaperText:
    fields = [
        text_field(name, rank, getattr(paper, name) or "") for rank, name in enumerate(FIELDS)
    ]
    fields.extend(text_field(None, AI_KEYWORDS_RANK, keyword) for keyword in paper.ai_keywords)
    return PaperText(
        fields=tuple(f for f in fields if f.keys),
        authors=tuple(tuple(words(name)) for name in paper.authors),
        organizations=tuple(
            tuple(name_words(name))
            for name in dict.fromkeys((paper.organization, paper.submitter_organization))
            if name
        ),
    )


class TextCache:
    """Tokenised papers, shared by an ``Interests`` and the one-subscriber views it spawns."""

    def __init__(self) -> None:
        self._texts: dict[Paper, PaperText] = {}

    def get(self, paper: Paper) -> PaperText:
        text = self._texts.get(paper)
        if text is None:
            if len(self._texts) >= _TEXT_CACHE_LIMIT:
                self._texts.clear()
            text = self._texts[paper] = tokenise(paper)
        return text
