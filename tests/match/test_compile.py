"""compile_interests stacks registered matcher layers, a plugin's through its entry point too."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path

import pytest

from digest import registry
from digest.config import subscriber_from
from digest.match import LAYERS, Matcher, MatcherContext, Ranking, compile_interests
from digest.models import Paper, Subscriber

SAMPLE = Path(__file__).parent.parent / "fixtures" / "samples" / "hf" / "api_2025-10-06.json"
SEEN: list[MatcherContext] = []


def papers() -> list[Paper]:
    return [
        Paper(arxiv_id=entry["paper"]["id"], title=entry["paper"]["title"],
              abstract=entry["paper"]["summary"], upvotes=entry["paper"].get("upvotes"))
        for entry in json.loads(SAMPLE.read_text(encoding="utf-8"))
    ]  # fmt: skip


class Fewest:
    """A plugin's matcher: the inner matcher's picks, fewest upvotes first, two at most."""

    def __init__(self, inner: Matcher) -> None:
        self.inner = inner

    @property
    def emails(self) -> list[str]:
        return self.inner.emails

    def rank(
        self, papers: Sequence[Paper], *, skip: Mapping[str, Collection[str]] | None = None
    ) -> dict[str, Ranking]:
        ranked = self.inner.rank(papers, skip=skip)
        return {email: self._cut(ranking) for email, ranking in ranked.items()}

    def rank_one(self, email: str, papers: Sequence[Paper]) -> Ranking:
        return self._cut(self.inner.rank_one(email, papers))

    @staticmethod
    def _cut(ranking: Ranking) -> Ranking:
        order = sorted(ranking.matches, key=lambda m: m.paper.upvotes or 0)
        return Ranking(order[:2], ranking.matched, ())


def fewest_layer(subscribers: Sequence[Subscriber], context: MatcherContext) -> Matcher | None:
    SEEN.append(context)
    assert context.inner is not None
    return Fewest(context.inner(subscribers))


def nothing_layer(subscribers: Sequence[Subscriber], context: MatcherContext) -> Matcher | None:
    return None


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two matchers a plugin registers through the entry-point group, as an installed one would."""
    points = tuple(
        metadata.EntryPoint(name=name, value=f"{__name__}:{name}_layer", group=group)
        for name, group in (("fewest", "paper_digest.matchers"),
                            ("nothing", "paper_digest.matchers"))
    )  # fmt: skip
    real = registry._entry_points
    monkeypatch.setattr(
        registry, "_entry_points", lambda group: points if group == "paper_digest.matchers"
        else real(group),
    )  # fmt: skip
    SEEN.clear()
    yield


READER = subscriber_from({"email": "ada@example.org", "keywords": ["language model", "agent"]})


def test_a_plugin_layer_wraps_the_built_in_ones(plugin: None) -> None:
    day = papers()
    plain = compile_interests([READER]).rank(day)[READER.email]
    stacked = compile_interests([READER], layers=[*LAYERS, "fewest"]).rank(day)[READER.email]
    assert len(plain.matches) > 2
    expected = sorted(plain.matches, key=lambda m: m.paper.upvotes or 0)[:2]
    assert [m.paper.key for m in stacked.matches] == [m.paper.key for m in expected]
    assert stacked.matched == plain.matched
    (context,) = SEEN
    assert context.feedback is None and context.liked == {}


def test_a_layer_with_nothing_to_add_leaves_the_ones_below(plugin: None) -> None:
    day = papers()
    plain = compile_interests([READER]).rank(day)[READER.email]
    same = compile_interests([READER], layers=[*LAYERS, "nothing"]).rank(day)[READER.email]
    assert [m.paper.key for m in same.matches] == [m.paper.key for m in plain.matches]


def test_the_first_layer_must_give_a_matcher(plugin: None) -> None:
    with pytest.raises(ValueError, match="'nothing' gave none"):
        compile_interests([READER], layers=["nothing"])
