"""Keyword interests on the real sample papers: every matching, ranking and highlighting rule.

Expectations come from independent regular expressions over the papers' own text (never from
the matcher), so a wrong rule shows up as a disagreement with the data.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from digest.config import parse_config, subscriber_from
from digest.errors import ConfigError
from digest.match.keywords import KeywordMatcher, compile_interests
from digest.models import Match, Paper, Subscriber
from digest.sources.hf_api import papers_from_entries
from digest.sources.sniff import parse_document

SAMPLES = Path(__file__).parent.parent / "fixtures" / "samples"
MATCH_FIXTURES = Path(__file__).parent.parent / "fixtures" / "match"
TODAY = dt.date(2026, 8, 1)


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    """Every distinct paper of the sample pages and API responses (268 of them)."""
    found: dict[str, Paper] = {}
    for path in sorted(SAMPLES.rglob("*")):
        if path.is_file() and not path.name.startswith("bad"):
            for paper in parse_document(path.read_bytes(), origin=path.name, today=TODAY):
                found.setdefault(paper.key, paper)
    assert len(found) > 200
    return list(found.values())


def sub(email: str = "ada@example.org", **interests: Any) -> Subscriber:
    interests.setdefault("max_papers", 500)
    return subscriber_from({"email": email, **interests})


def matched(papers: Sequence[Paper], **interests: Any) -> list[Match]:
    return compile_interests([sub(**interests)]).match(papers)["ada@example.org"]


def keys(matches: Sequence[Match]) -> set[str]:
    return {m.paper.key for m in matches}


def text_of(paper: Paper) -> str:
    return " | ".join([paper.title, paper.abstract, paper.ai_summary or "", *paper.ai_keywords])


def having(papers: Sequence[Paper], pattern: str) -> set[str]:
    """Keys of the papers whose text matches ``pattern`` (case-insensitive): the oracle."""
    compiled = re.compile(pattern, re.IGNORECASE)
    return {p.key for p in papers if compiled.search(text_of(p))}


def highlighted(match: Match) -> list[str]:
    fields = {
        "title": match.paper.title,
        "abstract": match.paper.abstract,
        "ai_summary": match.paper.ai_summary or "",
    }
    return [fields[s.field][s.start : s.end] for s in match.spans]


# --- whole words, phrases, plurals, prefixes ---------------------------------------------------


def test_whole_words_only_rag_is_not_fragment(papers: list[Paper]) -> None:
    fragment_only = having(papers, r"fragment") - having(papers, r"\bRAG\b")
    assert fragment_only, "the samples should hold an abstract with 'fragment' but no RAG"
    got = keys(matched(papers, keywords=["RAG"]))
    assert got == having(papers, r"\bRAG\b")
    assert not got & fragment_only


def test_whole_words_only_lora_is_not_explorations(papers: list[Paper]) -> None:
    got = keys(matched(papers, keywords=["LoRA"]))
    assert got == having(papers, r"\bLoRAs?\b")
    assert having(papers, r"explor") - got, "papers that only explore must not match LoRA"


def test_phrase_matches_across_hyphens_and_spaces(papers: list[Paper]) -> None:
    got = matched(papers, keywords=["mixture of experts"])
    assert keys(got) == having(papers, r"\bmixture[- ]of[- ]experts?\b")
    shown = {s.casefold() for m in got for s in highlighted(m)}
    assert "mixture-of-experts" in shown and "mixture of experts" in shown
    # And the other way round: a hyphenated keyword finds the spaced spelling.
    assert keys(matched(papers, keywords=["Mixture-of-Experts"])) == keys(got)


def test_phrase_never_spans_other_punctuation(papers: list[Paper]) -> None:
    # Real sentence ends ("... models. Language ...") and quotes ("large'' language").
    pairs = {
        (m.group(1).casefold(), m.group(2).casefold())
        for p in papers
        for m in re.finditer(r"\b([A-Za-z]{4,})(?:\. |'' )([A-Za-z]{4,})\b", p.abstract)
    }
    assert len(pairs) > 20
    chosen = sorted(pairs)[:60]
    subscribers = [
        sub(f"s{n}@example.org", keywords=[f"{a} {b}"]) for n, (a, b) in enumerate(chosen)
    ]
    result = compile_interests(subscribers).match(papers)
    for n, (first, second) in enumerate(chosen):
        expected = having(papers, rf"\b{first}s?[\s/-]+{second}s?\b")
        assert keys(result[f"s{n}@example.org"]) == expected, (first, second)


def test_phrase_matches_across_a_line_break_in_the_raw_title() -> None:
    entries = json.loads((SAMPLES / "hf" / "api_2025-03-24.json").read_text(encoding="utf-8"))
    raw = next(e for e in entries if e["paper"]["title"].startswith("MAPS"))
    assert "Personality and\n" in raw["paper"]["title"]
    (paper,) = papers_from_entries([raw], origin="api_2025-03-24.json")
    (match,) = matched([paper], keywords=["personality and socratic guidance"])
    assert match.in_title
    assert highlighted(match)[0] == "Personality and Socratic Guidance"


def test_plurals_fold_both_ways(papers: list[Paper]) -> None:
    agents = having(papers, r"\bagents?\b")
    assert agents - having(papers, r"\bagent\b"), "some papers say only 'agents'"
    assert keys(matched(papers, keywords=["agent"])) == agents
    assert keys(matched(papers, keywords=["agents"])) == agents

    llms = having(papers, r"\bLLMs?\b")
    assert llms - having(papers, r"\bLLMs\b"), "some papers say only 'LLM'"
    assert keys(matched(papers, keywords=["LLMs"])) == llms
    assert keys(matched(papers, keywords=["LLM"])) == llms

    queries = having(papers, r"\bquer(y|ies)\b")
    assert queries - having(papers, r"\bquery\b"), "some papers say only 'queries'"
    assert keys(matched(papers, keywords=["query"])) == queries
    assert keys(matched(papers, keywords=["queries"])) == queries


def test_trailing_star_is_a_prefix(papers: list[Paper]) -> None:
    got = matched(papers, keywords=["quantiz*"])
    assert keys(got) == having(papers, r"\bquantiz")
    words = {w.casefold() for m in got for w in highlighted(m)}
    in_text = {w.casefold() for p in papers for w in re.findall(r"\bquantiz\w*", text_of(p), re.I)}
    assert len(in_text) > 1 and words == in_text, "spans cover the whole words"
    # Without the star it is a plain word: no paper says just "quantiz".
    assert matched(papers, keywords=["quantiz"]) == []


def test_case_and_accents_do_not_matter(papers: list[Paper]) -> None:
    assert keys(matched(papers, keywords=["TRANSFORMER"])) == having(papers, r"\btransformers?\b")
    assert keys(matched(papers, keywords=["dïffusion"])) == having(papers, r"\bdiffusions?\b")


def test_ai_keywords_and_summary_are_searched(papers: list[Paper]) -> None:
    enriched = [p for p in papers if p.ai_keywords]
    assert enriched
    paper, term = next(
        (p, k)
        for p in enriched
        for k in p.ai_keywords
        if k.casefold() not in f"{p.title} {p.abstract} {p.ai_summary}".casefold()
    )
    got = [m for m in matched(papers, keywords=[term]) if m.paper.key == paper.key]
    assert got, f"{term!r} is only among the AI keywords of {paper.title!r}"
    assert got[0].keywords == (term,)
    assert got[0].spans == (), "AI keywords are matched but never highlighted"

    summarised = next(p for p in papers if p.ai_summary)
    word = max(re.findall(r"[A-Za-z]{9,}", summarised.ai_summary or ""), key=len)
    hits = [m for m in matched([summarised], keywords=[word]) if m.paper == summarised]
    assert hits and any(s.field == "ai_summary" for s in hits[0].spans)


# --- require, exclude, authors, organisations, upvotes -----------------------------------------


def test_exclude_wins_over_any_match(papers: list[Paper]) -> None:
    diffusion = having(papers, r"\bdiffusions?\b")
    video = having(papers, r"\bvideos?\b")
    assert diffusion & video, "some diffusion papers are about video"
    got = keys(matched(papers, keywords=["diffusion"], exclude=["video"]))
    assert got == diffusion - video


def test_every_require_term_must_appear(papers: list[Paper]) -> None:
    got = matched(papers, keywords=["LLM", "agent"], require=["benchmark", "reasoning"])
    expected = (
        (having(papers, r"\bLLMs?\b") | having(papers, r"\bagents?\b"))
        & having(papers, r"\bbenchmarks?\b")
        & having(papers, r"\breasonings?\b")
    )
    assert expected and keys(got) == expected
    for match in got:
        shown = {s.casefold() for s in highlighted(match)}
        assert shown & {"benchmark", "benchmarks"}, "require terms are highlighted too"


def test_require_alone_without_keywords_filters_everything(papers: list[Paper]) -> None:
    assert keys(matched(papers, require=["mamba"])) == having(papers, r"\bmambas?\b")


def test_authors_match_case_and_accent_insensitively(papers: list[Paper]) -> None:
    got = matched(papers, authors=["sercan o. arik"])
    assert [m.paper.key for m in got] == [p.key for p in papers if "Sercan Ö. Arik" in p.authors]
    assert got[0].keywords == ("sercan o. arik",)
    # A surname alone matches every author who carries it, as whole words only.
    wang = {p.key for p in papers if any(re.search(r"\bWang\b", a) for a in p.authors)}
    assert keys(matched(papers, authors=["WANG"])) == wang
    wan = {p.key for p in papers if any(re.search(r"\bWan\b", a) for a in p.authors)}
    assert wan != wang and keys(matched(papers, authors=["Wan"])) == wan


def test_organizations_match_the_papers_organisation(papers: list[Paper]) -> None:
    got = matched(papers, organizations=["university of hong kong"])
    assert keys(got) == {
        p.key for p in papers if p.organization and "University of Hong Kong" in p.organization
    }
    assert got


def test_authors_and_keywords_are_alternatives(papers: list[Paper]) -> None:
    got = keys(matched(papers, keywords=["mamba"], authors=["Björn Ommer"]))
    ommer = {p.key for p in papers if "Björn Ommer" in p.authors}
    assert got == having(papers, r"\bmambas?\b") | ommer


def test_min_upvotes_drops_papers_below_it_and_those_without_a_count(
    papers: list[Paper],
) -> None:
    unknown = {p.key for p in papers if p.upvotes is None}
    assert unknown, "saved text pages carry papers without upvotes"
    got = matched(papers, min_upvotes=10)
    assert keys(got) == {p.key for p in papers if p.upvotes is not None and p.upvotes >= 10}
    assert unknown <= keys(matched(papers)), "without min_upvotes they all count"


# --- no keywords, ranking, cap, skip ----------------------------------------------------------


def test_no_interests_gets_every_paper_ranked_by_upvotes(papers: list[Paper]) -> None:
    got = matched(papers)
    assert keys(got) == {p.key for p in papers}
    votes = [m.paper.upvotes for m in got]
    known = [v for v in votes if v is not None]
    assert known == sorted(known, reverse=True)
    assert votes.index(None) == len(known), "unknown upvotes come last"
    assert all(m.keywords == () and m.spans == () for m in got)


def test_no_interests_still_obeys_exclude(papers: list[Paper]) -> None:
    got = keys(matched(papers, exclude=["LLM"]))
    assert got == {p.key for p in papers} - having(papers, r"\bLLMs?\b")


def rank_key(match: Match) -> tuple[bool, int, int]:
    return (match.in_title, match.paper.upvotes or -1, -len(match.paper.key))


def test_ranking_title_then_upvotes_however_many_keywords_hit(papers: list[Paper]) -> None:
    got = matched(papers, keywords=["agent", "LLM", "benchmark", "reinforcement learning"])
    assert len(got) > 30
    order = [rank_key(m)[:2] for m in got]
    assert order == sorted(order, reverse=True)
    in_title = [m.in_title for m in got]
    assert True in in_title and False in in_title
    assert {len(m.keywords) for m in got} >= {1, 2, 3}
    for match in got:
        title_words = match.paper.title.casefold()
        assert match.in_title == any(
            re.search(rf"\b{re.escape(k.casefold().rstrip('s'))}s?\b", title_words)
            for k in match.keywords
        )
        assert match.score == (1000.0 if match.in_title else 0.0) + 1  # one kind: keywords


def test_ties_are_broken_by_recency_then_key_whatever_the_input_order(
    papers: list[Paper],
) -> None:
    # One total order: preview and run read papers in different orders and must agree.
    unknown = [p for p in papers if p.upvotes is None]
    forward = matched(unknown, keywords=["model"])
    assert matched(list(reversed(unknown)), keywords=["model"]) == forward
    first_tier = [m.paper for m in forward if m.in_title]
    order = [(-(p.published.toordinal() if p.published else 0), p.key) for p in first_tier]
    assert len(first_tier) > 3 and order == sorted(order)
    assert len({p.published for p in first_tier}) > 1  # recency did decide somewhere


def test_max_papers_caps_after_ranking(papers: list[Paper]) -> None:
    everything = matched(papers, keywords=["LLM", "agent"])
    capped = matched(papers, keywords=["LLM", "agent"], max_papers=7)
    assert capped == everything[:7]


def test_a_ranking_holds_the_cut_the_count_and_what_fell_below(papers: list[Paper]) -> None:
    everything = matched(papers, keywords=["LLM", "agent"])
    interests = compile_interests([sub(keywords=["LLM", "agent"], max_papers=4)])
    ranking = interests.rank(papers)["ada@example.org"]
    assert ranking.matches == everything[:4]
    assert ranking.matched == len(everything) > 4
    assert sorted(ranking.passed_over) == sorted(keys(everything[4:]))
    assert interests.rank_one("ada@example.org", papers) == ranking


def test_passed_over_keys_are_exact_over_many_bytes_of_papers(papers: list[Paper]) -> None:
    # over 8 papers per byte of the mask: each byte's keys are looked up from a table
    many = [p.model_copy(update={"key": f"{p.key}#{n}"}) for n in range(3) for p in papers]
    assert len(many) > 200
    for max_papers in (1, 7, 30):
        interests = compile_interests([sub(keywords=["agent"], max_papers=max_papers)])
        ranking = interests.rank(many)["ada@example.org"]
        everything = matched(many, keywords=["agent"], max_papers=500)
        assert 40 < len(everything) < 500
        assert ranking.matched == len(everything)
        assert sorted(ranking.passed_over) == sorted(keys(everything[max_papers:]))
        assert not set(ranking.passed_over) & set(keys(ranking.matches))


def test_skip_drops_delivered_papers_before_the_cap(papers: list[Paper]) -> None:
    interests = compile_interests([sub(keywords=["LLM"], max_papers=5)])
    first = interests.match(papers)["ada@example.org"]
    delivered = {m.paper.key for m in first}
    again = interests.match(papers, skip={"ada@example.org": delivered})["ada@example.org"]
    assert len(again) == 5 and not keys(again) & delivered
    everything = matched(papers, keywords=["LLM"])
    assert [m.paper.key for m in again] == [m.paper.key for m in everything[5:10]]


# --- spans -------------------------------------------------------------------------------------


def test_spans_are_sorted_disjoint_and_slice_the_matched_words(papers: list[Paper]) -> None:
    words = ["language model", "large language model", "LLM", "diffusion*", "agents"]
    got = matched(papers, keywords=words)
    order = {"title": 0, "abstract": 1, "ai_summary": 2}
    for match in got:
        spans = [(order[s.field], s.start, s.end) for s in match.spans]
        assert spans == sorted(spans)
        for (f1, _, e1), (f2, s2, _) in pairwise(spans):
            assert f1 != f2 or e1 <= s2, "spans never overlap"
        for text in highlighted(match):
            assert re.fullmatch(
                r"(large[- ])?language[- ]models?|LLMs?|diffusion\w*|agents?", text, re.I
            ), text
    merged = [t for m in got for t in highlighted(m) if t.casefold().startswith("large language")]
    assert merged, "'large language model' and 'language model' merge into one span"


def test_spans_cover_every_occurrence(papers: list[Paper]) -> None:
    for match in matched(papers, keywords=["reasoning"]):
        for field in ("title", "abstract"):
            text = getattr(match.paper, field)
            expected = [(m.start(), m.end()) for m in re.finditer(r"\breasonings?\b", text, re.I)]
            assert [(s.start, s.end) for s in match.spans if s.field == field] == expected


# --- the API: many subscribers at once, one subscriber alone --------------------------------


def test_every_subscriber_is_in_the_result(papers: list[Paper]) -> None:
    subscribers = [
        sub("a@example.org", keywords=["mamba"]),
        sub("b@example.org", keywords=["no such topic anywhere"]),
        sub("c@example.org"),
    ]
    result = compile_interests(subscribers).match(papers)
    assert list(result) == ["a@example.org", "b@example.org", "c@example.org"]
    assert result["b@example.org"] == []
    assert len(result["c@example.org"]) == len(papers)


def test_shared_vocabulary_gives_the_same_answers_as_one_by_one(papers: list[Paper]) -> None:
    subscribers = [
        sub("a@example.org", keywords=["agent", "LLMs"], exclude=["survey"]),
        sub("b@example.org", keywords=["agents", "quantiz*"], max_papers=4),
        sub("c@example.org", keywords=["mixture of experts"], require=["LLM"]),
        sub("d@example.org", authors=["Kai Wang"], keywords=["diffusion"]),
        sub("e@example.org", min_upvotes=20),
    ]
    together = compile_interests(subscribers).match(papers)
    for subscriber in subscribers:
        alone = compile_interests([subscriber]).match(papers)[subscriber.email]
        assert together[subscriber.email] == alone


def test_match_one_equals_match_and_accepts_other_paper_lists(papers: list[Paper]) -> None:
    subscribers = [sub("a@example.org", keywords=["LLM"]), sub("b@example.org", keywords=["RAG"])]
    interests = compile_interests(subscribers)
    assert interests.match_one("a@example.org", papers) == interests.match(papers)["a@example.org"]
    half = papers[::2]
    assert interests.match_one("b@example.org", half) == interests.match(half)["b@example.org"]
    with pytest.raises(KeyError):
        interests.match_one("nobody@example.org", papers)


def test_an_interests_object_can_be_reused(papers: list[Paper]) -> None:
    interests: KeywordMatcher = compile_interests([sub(keywords=["LLM"])])
    first = interests.match(papers[:100])["ada@example.org"]
    second = interests.match(papers[100:])["ada@example.org"]
    assert keys(first) <= {p.key for p in papers[:100]}
    assert keys(second) <= {p.key for p in papers[100:]}
    assert keys(first) | keys(second) == keys(matched(papers, keywords=["LLM"]))


# --- invalid interests are config errors naming the subscriber ------------------------------


def config_with(interests: str) -> str:
    template = (MATCH_FIXTURES / "subscriber.toml").read_text(encoding="utf-8")
    return template.replace("# INTERESTS", interests)


@pytest.mark.parametrize(
    ("interests", "message"),
    [
        ('keywords = [""]', "keywords has an empty entry"),
        ('keywords = ["   "]', "keywords has an empty entry"),
        ('require = ["!!"]', "has no letters or digits"),
        ('exclude = ["__"]', "has no letters or digits"),
        ('keywords = ["*"]', "has no letters or digits"),
        ('authors = ["-"]', "has no letters or digits"),
        ('keywords = ["Agent"]\nexclude = ["agents"]', "both wanted and excluded"),
        ('keywords = ["mixture of experts"]\nexclude = ["Mixture-of-Experts"]', "both wanted"),
        ('require = ["LLMs"]\nexclude = ["llm"]', "both wanted and excluded"),
        ('keywords = ["quantiz*"]\nexclude = ["quantiz"]', "both wanted and excluded"),
    ],
)
def test_invalid_interests_name_the_subscriber(
    tmp_path: Path, interests: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(interests), tmp_path / "digest.toml")
    text = str(caught.value)
    assert "grace@example.org" in text and message in text
    assert "digest.toml" in text


def test_valid_interests_load_and_compile(tmp_path: Path, papers: list[Paper]) -> None:
    config = parse_config(
        config_with('keywords = ["agent", "quantiz*"]\nexclude = ["survey"]'),
        tmp_path / "digest.toml",
    )
    result = compile_interests(config.subscriber_list).match(papers)
    assert result["grace@example.org"]


def test_compiling_rejects_a_subscriber_listed_twice() -> None:
    with pytest.raises(ConfigError, match="twice"):
        compile_interests([sub(keywords=["a1"]), sub(keywords=["b2"])])
