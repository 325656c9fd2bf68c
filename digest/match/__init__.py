"""The Matcher interface: papers + subscribers -> each subscriber's ranked matches, with reasons.

How a term matches (keywords, ``require``, ``exclude`` alike), case- and accent-insensitively,
over a paper's title, abstract, AI keywords and AI summary:

- text is cut into words (runs of letters and digits); a term matches whole words only, so "RAG"
  never matches "fragment";
- a phrase matches its words in a row separated by spaces, hyphens, slashes or line breaks
  ("mixture of experts" matches "Mixture-of-Experts", "GPT-4" matches "GPT 4"), never across
  other punctuation ("... large. Language models" is not "large language models");
- simple English plurals fold both ways ("agent"/"agents", "LLMs"/"LLM", "query"/"queries");
- a trailing ``*`` makes the last word a prefix ("quantiz*": "quantized", "quantization").

A paper is picked for a subscriber when it matches any keyword, any of ``authors`` (a name's
words in a row within one author's name: "LeCun" matches "Yann LeCun") or any of
``organizations`` (likewise within the paper's organisation); with none of these three set, every
paper is picked. Then every ``require`` term must match, no ``exclude`` term may, and with
``min_upvotes`` set a paper needs at least that many upvotes: a paper whose source does not say
(saved text pages often do not) is left out, since it cannot be shown to qualify.

Ranking: a keyword in the title first, then more distinct matched interests, then more upvotes
(unknown counts last), then the paper's key: a total order, so no input order can change it;
``max_papers`` caps the list after papers already delivered (``skip``) are dropped.

The parts: :mod:`digest.terms` (how terms are written and compared), :mod:`.text` (papers cut
into words once), :mod:`.vocabulary` (every term and name with an id, scanning a paper for them),
:mod:`.keywords` (subscribers' interests as profiles of ids: the keyword :class:`Matcher`) and
:mod:`.select` (one call's bit masks, picks and ``Match`` values).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from digest.models import Match, Paper, Subscriber

__all__ = ["Matcher", "compile_interests"]


class Matcher(Protocol):
    """Papers + subscribers -> ranked matches with the reasons each paper was picked."""

    @property
    def emails(self) -> list[str]:
        """The subscribers, in the order they were given."""

    def match(
        self,
        papers: Sequence[Paper],
        *,
        skip: Mapping[str, Collection[str]] | None = None,
        capped: bool = True,
    ) -> dict[str, list[Match]]:
        """Each subscriber's matches among ``papers``, best first (capped at ``max_papers``
        unless ``capped=False``); keys in ``skip[email]`` are dropped before the cap."""

    def match_one(self, email: str, papers: Sequence[Paper], *, capped: bool = True) -> list[Match]:
        """One subscriber's matches among ``papers``."""


def compile_interests(subscribers: Sequence[Subscriber]) -> Matcher:
    """The matcher for these subscribers' interests."""
    from digest.match.keywords import compile_interests as compile_keywords

    return compile_keywords(subscribers)
