"""Interests in plain words and liked papers, matched by meaning with the bundled model, offline:
on the real samples and the hand-judged relevance set of bench/relevance.py."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from digest.errors import ConfigError
from digest.match import compile_interests
from digest.match.closeness import DEFAULT_MIN_SIMILARITY, SAMPLE_PREFIX, sample_papers
from digest.match.embedding import interest_text
from digest.match.keywords import KeywordMatcher
from digest.match.semantic import SemanticMatcher
from digest.models import Paper, Subscriber

pytest.importorskip("wordllama", reason="the semantic extra is not installed")

ROOT = Path(__file__).resolve().parent.parent.parent
REWARD = (
    "training language models from reward signals, with reinforcement learning, preference "
    "optimization or reward models"
)


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("relevance", ROOT / "bench" / "relevance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["relevance"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


relevance = _bench()


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    found: list[Paper] = relevance.sample_papers()
    assert len(found) == 77
    return found


def rank(papers: list[Paper], **rules: Any) -> list[Any]:
    rules = {k: tuple(v) if isinstance(v, list) else v for k, v in rules.items()}
    rules.setdefault("max_papers", 500)
    subscriber = Subscriber(email="ada@example.org", **rules)
    return compile_interests([subscriber]).rank(papers)["ada@example.org"].matches


def test_plain_words_alone_find_the_judged_papers() -> None:
    rows = relevance.evaluate()
    precision, recall = relevance.mean(rows, "about")
    assert precision >= 0.50 and recall >= 0.75, (precision, recall)
    # the same interests written as a sentence each: one min_similarity scale serves both (a
    # cosine threshold found a third of these papers, a sentence's cosines running lower)
    precision, recall = relevance.mean(rows, "sentence")
    assert precision >= 0.65 and recall >= 0.60, (precision, recall)
    # and keywords with it lose none of what keywords alone found
    for interest in {row.interest for row in rows}:
        by_kind = {row.kind: row for row in rows if row.interest == interest}
        assert by_kind["keywords"].picked <= by_kind["both"].picked


def test_an_interest_is_embedded_from_the_words_that_name_its_topic() -> None:
    assert (
        interest_text("I want to follow research on making computers create and edit video")
        == "making computers create edit video"
    )
    # curly apostrophes, hyphens and digits as readers type them
    typed = "I\u2019m interested in LLM-based agents, and 3D!"
    assert interest_text(typed) == "LLM-based agents 3D"
    assert interest_text("  papers  about it ") == "papers about it"  # nothing but filler
    # the small words of a topic's own phrase stay
    assert interest_text("few shot and out of distribution") == "few shot out distribution"
    # punctuation inside a word is part of it
    assert interest_text("papers about 2.5D scenes (in C++), Q&A") == "2.5D scenes C++ Q&A"


def test_a_request_worded_as_a_sentence_ranks_as_its_topic_does(papers: list[Paper]) -> None:
    # through the matcher: the words around the topic change nothing, the label keeps them
    sentence = "I would like to follow papers about generating and editing videos with diffusion"
    worded = rank(papers, about=[sentence])
    plain = rank(papers, about=["generating editing videos diffusion"])
    assert worded and [m.paper.key for m in worded] == [m.paper.key for m in plain]
    assert all((m.close_to or "").startswith("“I would like to follow papers") for m in worded)
    # readers whose words differ only in filler share a vector, each quoted in their own words
    readers = [
        Subscriber(email="ada@example.org", about=("generating and editing videos",)),
        Subscriber(email="bob@example.org", about=("papers about generating and editing videos",)),
    ]
    ranked = compile_interests(readers).rank(papers)
    ada, bob = (ranked[r.email].matches for r in readers)
    assert ada and [m.paper.key for m in ada] == [m.paper.key for m in bob]
    assert {m.close_to for m in ada} == {"“generating and editing videos”"}
    assert {m.close_to for m in bob} == {"“papers about generating and editing videos”"}


def test_the_held_out_figures_are_rows_matched_at_thresholds_of_the_grid() -> None:
    grid = [0.95, 0.975, 0.99]
    rows = relevance.held_out(grid)
    assert len(rows) == 6 and all(threshold in grid for _, threshold in rows)
    by_threshold = {
        t: {r.interest: r for r in relevance.evaluate(t) if r.kind == "about"} for t in grid
    }
    for row, threshold in rows:
        assert row == by_threshold[threshold][row.interest]
    # a lower threshold picks more: the grid is not one setting three times over
    assert sum(len(r.picked) for r in by_threshold[0.95].values()) > sum(
        len(r.picked) for r in by_threshold[0.99].values()
    )


def test_a_paper_that_says_it_differently_is_found(papers: list[Paper]) -> None:
    # "reward signals" in the words of the reader; the paper speaks of agentic RL
    found = {m.paper.arxiv_id: m for m in rank(papers, about=[REWARD])}
    guide = found["2510.01132"]
    assert "reward signal" not in guide.paper.abstract.lower()
    assert (guide.close_to or "").startswith("“training language models from reward signals")
    assert guide.similarity is not None and guide.similarity >= DEFAULT_MIN_SIMILARITY
    assert not guide.keywords


def test_exclude_and_require_apply_to_matches_by_meaning(papers: list[Paper]) -> None:
    everything = {m.paper.arxiv_id for m in rank(papers, about=[REWARD])}
    assert "2403.13787" in everything  # RewardBench
    excluded = {m.paper.arxiv_id for m in rank(papers, about=[REWARD], exclude=["benchmark"])}
    assert "2403.13787" not in excluded and excluded < everything
    required = rank(papers, about=[REWARD], require=["reasoning"])
    assert required
    for match in required:
        paper = match.paper
        text = " ".join([paper.title, paper.abstract, *paper.ai_keywords, paper.ai_summary or ""])
        assert "reasoning" in text.lower()


def test_a_liked_paper_brings_its_neighbours_and_is_not_offered_again(
    papers: list[Paper],
) -> None:
    liked = {p.arxiv_id: p for p in papers if p.arxiv_id == "2607.26637"}  # filesystem memory
    subscriber = Subscriber(email="ada@example.org", like=("2607.26637",), max_papers=500)
    found = compile_interests([subscriber], liked=liked).rank(papers)["ada@example.org"].matches
    ids = {m.paper.arxiv_id for m in found}
    assert "2607.26637" not in ids
    assert "2607.27958" in ids  # Σ-Mem, memory for LLM agents too
    assert all((m.close_to or "").startswith("liked paper 2607.26637") for m in found)


def test_keyword_hits_in_the_title_rank_first_then_closeness(papers: list[Paper]) -> None:
    found = rank(papers, about=["web agents that browse websites"], keywords=["web"])
    titled = [m for m in found if m.in_title]
    assert titled and found[: len(titled)] == titled
    by_meaning = [m for m in found if not m.keywords]
    assert by_meaning and all(0.5 <= m.score < 1.0 for m in by_meaning)
    # meaning evidence 0.5 + 0.5 min(1, (z - t) / 3), z the paper's standard score (its share
    # of recent papers, through the normal distribution) and t min_similarity's; closer first
    normal = statistics.NormalDist()
    t = normal.inv_cdf(DEFAULT_MIN_SIMILARITY)
    for match in by_meaning:
        assert match.similarity is not None and match.similarity >= DEFAULT_MIN_SIMILARITY
        z = normal.inv_cdf(match.similarity)
        assert abs(match.score - (0.5 + 0.5 * min(1.0, (z - t) / 3))) < 0.011
    assert [x.score for x in by_meaning] == sorted((x.score for x in by_meaning), reverse=True)
    # a keyword hit outside the title (evidence 0.8) ranks above a paper barely close enough
    elsewhere = [i for i, x in enumerate(found) if x.keywords and not x.in_title]
    weak = [i for i, x in enumerate(found) if not x.keywords and x.score < 0.8]
    assert elsewhere and weak and max(elsewhere) < min(weak)


def test_keyword_subscribers_are_matched_exactly_as_without_meaning(papers: list[Paper]) -> None:
    plain = Subscriber(email="bob@example.org", keywords=("agent",), max_papers=9)
    worded = Subscriber(email="ada@example.org", about=(REWARD,))
    both = compile_interests([worded, plain])
    assert isinstance(both, SemanticMatcher)
    alone = KeywordMatcher([plain], both._keywords.texts).rank(papers)["bob@example.org"]
    assert both.rank(papers)["bob@example.org"] == alone
    assert both.rank_one("ada@example.org", papers) == both.rank(papers)["ada@example.org"]


def test_without_the_semantic_extra_the_error_names_it(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[sources]]\nkind = "page"\npath = "x.json"\n'
        f'[[subscribers]]\nemail = "ada@example.org"\nabout = ["{REWARD}"]\n',
        encoding="utf-8",
    )
    (tmp_path / "x.json").write_text("[]")
    code = (
        "import sys; sys.modules['wordllama'] = None\n"
        "from digest.cli import main\n"
        f"sys.exit(main(['--config', {str(config)!r}, 'check']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "pip install 'paper-digest[semantic]'" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(ConfigError) as raised:
        _raise_without_model()
    assert "paper-digest[semantic]" in (raised.value.hint or "")


def _raise_without_model() -> None:
    import digest.match.embedding as embedding

    saved = sys.modules.get("wordllama")
    sys.modules["wordllama"] = None  # type: ignore[assignment]
    try:
        embedding.WordLlamaEmbedder()
    finally:
        if saved is not None:
            sys.modules["wordllama"] = saved


BLOCKED = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
sys.path.insert(0, {bench!r})
from relevance import sample_papers
from digest.match import compile_interests
from digest.models import Subscriber
papers = sample_papers()
ada = Subscriber(email="ada@example.org", about=({reward!r},), max_papers=500)
found = compile_interests([ada]).rank(papers)["ada@example.org"].matches
print(json.dumps([m.paper.arxiv_id for m in found]))
"""


def test_semantic_matching_runs_with_every_socket_blocked(papers: list[Paper]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env["HF_HUB_OFFLINE"] = "0"  # nothing may rely on an offline switch: the sockets refuse
    code = BLOCKED.format(bench=str(ROOT / "bench"), reward=REWARD)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    offline = json.loads(done.stdout.splitlines()[-1])
    assert offline == [m.paper.arxiv_id for m in rank(papers, about=[REWARD])]
    assert "2510.01132" in offline


class CountingEmbedder:
    """The bundled model, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        from digest.match.embedding import bundled_embedder

        self.inner = bundled_embedder()
        self.name = self.inner.name
        self.texts = 0

    def embed(self, texts: Any) -> Any:
        self.texts += len(texts)
        return self.inner.embed(texts)


def test_papers_are_embedded_once_and_kept_in_the_store(
    papers: list[Paper], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.match.semantic as semantic
    from digest.store.sqlite import SqliteStore

    monkeypatch.setattr(semantic, "_SAMPLE_VECTORS", {})  # as in a new process

    ada = Subscriber(email="ada@example.org", about=(REWARD,), max_papers=500)
    path = tmp_path / "digest.db"
    with SqliteStore.open(path) as store:
        store.observe(papers, dt.datetime(2026, 8, 1, tzinfo=dt.UTC))
        first = CountingEmbedder()
        ranked = SemanticMatcher([ada], first, store=store).rank(papers)["ada@example.org"]
        # the description, every paper, and the bundled papers the collection lacks (a new
        # store holds too few to judge closeness against: digest.match.closeness)
        samples = {p.key for p in sample_papers()}
        assert first.texts == 1 + len(papers) + len(
            samples - {SAMPLE_PREFIX + p.key for p in papers}
        )
    with SqliteStore.open(path, readonly=True) as store:
        again = CountingEmbedder()
        assert SemanticMatcher([ada], again, store=store).rank(papers)["ada@example.org"] == ranked
        assert again.texts == 1  # the description only: the papers' vectors came from the store
    summary = {"ai_summary": "A new summary."}
    changed = [p.model_copy(update=summary) if p.arxiv_id == "2510.01459" else p for p in papers]
    with SqliteStore.open(path, readonly=True) as store:
        third = CountingEmbedder()
        SemanticMatcher([ada], third, store=store).rank(changed)
        assert third.texts == 2  # the paper whose text changed is embedded again


def test_a_run_keeps_every_papers_vector_and_the_next_run_embeds_none_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    import digest.match.embedding as embedding
    from digest import Digest, load_config

    embedded: list[str] = []
    real = embedding.bundled_embedder()

    class Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def embed(self, texts: list[str]) -> object:
            embedded.extend(texts)
            return real.embed(texts)

    monkeypatch.setattr(embedding, "bundled_embedder", lambda: Counting())
    sample = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "hf"
    (tmp_path / "digest.toml").write_text(
        f'[[sources]]\nkind = "page"\npath = "{sample}/api_2025-10-06.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "D <d@example.org>"\n'
        '[[subscribers]]\nemail = "ada@example.org"\n'
        'about = ["reasoning with reinforcement learning"]\n'
    )
    core = Digest(load_config(tmp_path / "digest.toml"),
                  clock=lambda: dt.datetime(2025, 10, 6, 7, tzinfo=dt.UTC))  # fmt: skip
    assert core.run().exit_code == 0
    first = len(embedded)
    with core.open_store(readonly=True) as store:
        keys = [p.key for p in store.recent_papers(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))]
        kept = store.paper_vectors(keys)
    assert len(keys) == 16 and set(kept) == set(keys)  # every paper's vector is in the store
    embedded.clear()
    assert core.run(day=dt.date(2025, 10, 7)).exit_code == 0
    # the interest's own words (embedded as "reasoning reinforcement learning") are all it embeds
    assert first > 0 and [t for t in embedded if t != "reasoning reinforcement learning"] == []
