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

Ranking: a keyword in the title first, then more kinds of interest matched (keywords, authors,
organisations: synonyms among the keywords count once), then more upvotes (unknown counts last),
then the newest, then the paper's key: a total order, so no input order can change it;
``max_papers`` caps the list after papers already delivered (``skip``) are dropped.

The parts: :mod:`digest.terms` (how terms are written and compared), :mod:`.text` (papers cut
into words once), :mod:`.vocabulary` (every term and name with an id, scanning a paper for them),
:mod:`.keywords` (subscribers' interests as profiles of ids: the keyword :class:`Matcher`) and
:mod:`.select` (one call's bit masks, picks and ``Match`` values).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from digest.models import Match, Paper, Subscriber

if TYPE_CHECKING:
    from digest.match.profile import FeedbackStore
    from digest.match.semantic import PaperVectors
    from digest.match.text import TextCache

__all__ = ["LAYERS", "Matcher", "MatcherContext", "MatcherFactory", "Ranking", "compile_interests"]


class Ranking:
    """One subscriber's result: the matches that make the email (best first, at most
    ``max_papers``), how many papers matched in all, and the keys of those ranked below the cap
    (recorded with the digest, so they are not offered again).

    ``passed_over`` may be given as a function, called the first time it is read: only a run
    that records its plan needs those keys, and working them out for every subscriber costs as
    much as the ranking itself. Shared by subscribers whose interests and history are equal:
    never change it.
    """

    __slots__ = ("_passed_over", "matched", "matches")

    def __init__(
        self,
        matches: list[Match],
        matched: int,
        passed_over: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
    ) -> None:
        self.matches = matches
        self.matched = matched
        self._passed_over = passed_over

    @property
    def passed_over(self) -> tuple[str, ...]:
        """The keys of the matches below the cap, in no particular order."""
        if callable(self._passed_over):
            self._passed_over = self._passed_over()
        return self._passed_over

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ranking):
            return NotImplemented
        return (self.matches, self.matched, sorted(self.passed_over)) == (
            other.matches,
            other.matched,
            sorted(other.passed_over),
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, and not immutable

    def __repr__(self) -> str:
        return f"Ranking({len(self.matches)} of {self.matched} matched)"


class Matcher(Protocol):
    """Papers + subscribers -> ranked matches with the reasons each paper was picked."""

    @property
    def emails(self) -> list[str]:
        """The subscribers, in the order they were given."""

    def rank(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, Ranking]:
        """Each subscriber's :class:`Ranking` among ``papers``; keys in ``skip[email]``
        (already delivered) are dropped before the cap."""

    def rank_one(self, email: str, papers: Sequence[Paper]) -> Ranking:
        """One subscriber's :class:`Ranking` among ``papers``."""


@dataclass(frozen=True)
class MatcherContext:
    """What a matcher factory may use besides the subscribers: ``texts``, the papers tokenised
    (shared by every layer of one compile); ``liked``, papers readers ``like`` (arXiv id ->
    paper); ``vectors``, where paper embeddings are kept; ``feedback``, the readers' verdicts;
    ``inner``, the matcher of the layers below this one, for a factory that wraps it (None for
    the first layer)."""

    texts: TextCache
    liked: Mapping[str, Paper] = field(default_factory=dict)
    vectors: PaperVectors | None = None
    feedback: FeedbackStore | None = None
    inner: Callable[[Sequence[Subscriber]], Matcher] | None = None


class MatcherFactory(Protocol):
    """A registered matcher (``digest.registry.MATCHERS``): the matcher for ``subscribers``,
    or None when this layer has nothing to add for them (the layers below then match alone)."""

    def __call__(
        self, subscribers: Sequence[Subscriber], context: MatcherContext, /
    ) -> Matcher | None: ...


LAYERS = ("keywords", "semantic", "profile")
"""The registered matchers a compile stacks, each wrapping the ones before it if it has
anything to add: keywords, then meaning (``about``, ``like``), then readers' profiles."""


def compile_interests(
    subscribers: Sequence[Subscriber],
    *,
    liked: Mapping[str, Paper] | None = None,
    store: PaperVectors | None = None,
    feedback: FeedbackStore | None = None,
    texts: TextCache | None = None,
    layers: Sequence[str] = LAYERS,
) -> Matcher:
    """The matcher for these subscribers' interests: the keyword matcher, or the semantic one
    (:mod:`.semantic`) when someone describes interests in words (``about``) or by papers they
    liked (``like``, resolved through ``liked``: arXiv id -> paper); around it, with
    ``feedback`` (the store) and the semantic extra installed, the profiles of the readers who
    gave verdicts (:mod:`.profile`). ``texts``: papers already tokenised (a caller that
    matches the same papers for several groups of subscribers keeps one). ``layers``: the
    registered matchers to stack, first to last (a plugin's among them); the first must
    always give a matcher."""
    from digest.collector import cyclic_gc_paused
    from digest.match.text import TextCache
    from digest.registry import MATCHERS

    shared = TextCache() if texts is None else texts
    factories = [MATCHERS.load(name) for name in layers]

    def up_to(level: int) -> Callable[[Sequence[Subscriber]], Matcher]:
        def make(readers: Sequence[Subscriber]) -> Matcher:
            context = MatcherContext(
                shared, liked or {}, store, feedback, up_to(level - 1) if level else None
            )
            made = factories[level](readers, context)
            if made is not None:
                return made
            if not level:
                raise ValueError(f"the matcher {layers[0]!r} gave none; the first layer must")
            return up_to(level - 1)(readers)

        return make

    with cyclic_gc_paused():  # thousands of readers' profiles: many small acyclic objects
        return up_to(len(factories) - 1)(subscribers)
