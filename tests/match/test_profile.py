"""A profile per reader from their verdicts: the fit separates what they marked, the profile
lifts, drops and adds papers around their rules (the why-line names the marked paper), papers
judged are never offered again, a kept profile is fitted again only when the verdicts change,
and a real run through the CLI follows the verdicts given with ``digest feedback``."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from digest.match import compile_interests
from digest.match import profile as profiles
from digest.match.keywords import compile_interests as keyword_matcher
from digest.match.profile import ProfileMatcher, fit, scores, standardised
from digest.models import Paper, Subscriber
from digest.store import Store, open_store

NOW = dt.datetime(2025, 10, 6, 7, tzinfo=dt.UTC)
WORDS = ("robot", "grasp", "arm", "diffusion", "image", "language", "model", "reason", "graph")


class WordEmbedder:
    """Papers as unit vectors of the words above they mention: a model whose closeness a test
    can reason about."""

    name = "test words"

    def __init__(self) -> None:
        self.embedded = 0

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.embedded += len(texts)
        rows = np.array(
            [
                [1.0 + 0.0 * i if w in t.lower() else 0.0 for i, w in enumerate(WORDS)]
                for t in texts
            ],
            dtype=np.float32,
        )
        rows += 0.05  # no zero vector
        result: npt.NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return result


def paper(number: int, title: str) -> Paper:
    return Paper(arxiv_id=f"2510.{number:05d}", title=title, abstract=title, upvotes=number)


DAY_ONE = [
    paper(1, "Robot arm grasp planning"),
    paper(2, "Robot grasp of soft objects"),
    paper(3, "Diffusion model for image synthesis"),
    paper(4, "Image diffusion model distillation"),
    paper(5, "Graph reasoning benchmark"),
    paper(6, "Image diffusion model upscaling"),
]
DAY_TWO = [
    paper(11, "Grasp learning for a robot arm"),  # like the marked papers, and no rule names it
    paper(12, "Faster image diffusion model sampling"),  # a rule's match, like the "fewer" ones
    paper(13, "Language model reasoning traces"),  # a rule's match, neither
    paper(14, "Graph neural networks at scale"),
    paper(15, "Graph partitioning heuristics"),
    paper(16, "Language reasoning with graph models"),
    paper(17, "Image captioning datasets"),
    paper(18, "Reason about graph image"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(str(tmp_path / "digest.db"), base_dir=tmp_path) as opened:
        opened.observe([*DAY_ONE, *DAY_TWO], NOW)
        yield opened


READER = Subscriber(email="ada@example.org", keywords=("model",), max_papers=10)


def judge(store: Store, more: Sequence[int], less: Sequence[int]) -> None:
    for number in more:
        store.record_verdict(READER.email, f"2510.{number:05d}", 1, NOW)
    for number in less:
        store.record_verdict(READER.email, f"2510.{number:05d}", -1, NOW)


def matcher(store: Store, embedder: WordEmbedder, reader: Subscriber = READER) -> ProfileMatcher:
    judged = store.verdict_revisions([reader.email])
    widest = Subscriber(email=reader.email, keywords=reader.keywords, max_papers=500)
    return ProfileMatcher([reader], keyword_matcher([widest]), judged, embedder, store)


def test_the_fit_tells_the_marked_sides_apart() -> None:
    rng = np.random.default_rng(7)
    wanted, unwanted = np.eye(8, dtype=np.float32)[0], np.eye(8, dtype=np.float32)[1]
    noise = rng.normal(0, 0.1, (40, 8)).astype(np.float32)
    positive, negative = wanted + noise[:10], unwanted + noise[10:20]
    background = noise[20:] + 0.3
    weights = standardised(fit(positive, negative, background), background)
    chance, standing = scores(weights[np.newaxis], np.stack([wanted, unwanted]))
    assert chance[0, 0] > 0.5 > chance[1, 0]
    assert standing[0, 0] > 2 > standing[1, 0]


def test_a_fit_from_an_earlier_profile_reaches_the_same_weights() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(0, 1, (60, 16)).astype(np.float32)
    earlier = fit(rows[:10], rows[10:20], rows[20:])
    fresh = fit(rows[:11], rows[10:20], rows[20:])  # one verdict more
    again = fit(rows[:11], rows[10:20], rows[20:], start=earlier)
    assert np.allclose(fresh, again, atol=1e-3)
    assert not np.allclose(earlier, again, atol=1e-3)
    other = fit(rows[:11], rows[10:20], rows[20:], start=np.zeros(5, dtype=np.float32))
    assert np.allclose(fresh, other, atol=1e-3)  # another model's profile: started afresh


def test_the_profile_lifts_drops_and_adds_around_the_rules(store: Store) -> None:
    before = [m.paper.title for m in keyword_matcher([READER]).rank(DAY_TWO)[READER.email].matches]
    assert "Grasp learning for a robot arm" not in before  # the rule ("model") misses it
    assert "Faster image diffusion model sampling" in before
    judge(store, more=[1, 2], less=[3, 4, 6])
    ranking = matcher(store, WordEmbedder()).rank(DAY_TWO)[READER.email]
    titles = [m.paper.title for m in ranking.matches]
    assert titles[0] == "Grasp learning for a robot arm"  # added: like the papers marked "more"
    assert ranking.matches[0].marked in ("Robot arm grasp planning", "Robot grasp of soft objects")
    assert ranking.matches[0].keywords == ()
    assert "Faster image diffusion model sampling" not in titles  # like the "fewer" ones
    assert "Language model reasoning traces" in titles  # the rule's match the profile leaves be
    assert ranking.matched == len(titles)


def test_an_empty_digest_the_profile_emptied_says_so(store: Store) -> None:
    from digest.explain import explain_empty
    from digest.models import Batch

    judge(store, more=[1, 2], less=[3, 4, 6])
    day = [p for p in DAY_TWO if p.arxiv_id != "2510.00011"]  # nothing the profile would add
    # a rule that matches one paper, and a word the test model does not know: a neutral prior
    reader = Subscriber(email=READER.email, keywords=("faster",), max_papers=10)
    assert [
        m.paper.arxiv_id for m in keyword_matcher([reader]).rank(day)[reader.email].matches
    ] == ["2510.00012"]  # the rule's one match, like the papers marked "fewer"
    assert not matcher(store, WordEmbedder(), reader).rank(day)[reader.email].matches
    (why,) = explain_empty([reader], day, Batch(papers=tuple(day)), skip={}).values()
    assert why.cause == "profile-cut"
    assert why.line.startswith("1 paper today matched your interests, but each was like papers")
    assert [near.paper.arxiv_id for near in why.near] == ["2510.00012"]


def test_papers_judged_are_never_offered_again(store: Store) -> None:
    judge(store, more=[1, 2], less=[3])
    ranking = matcher(store, WordEmbedder()).rank([*DAY_ONE, *DAY_TWO])[READER.email]
    keys = {m.paper.key for m in ranking.matches} | set(ranking.passed_over)
    assert keys.isdisjoint({"2510.00001", "2510.00002", "2510.00003"})


def test_max_papers_caps_and_rank_one_agrees_with_rank(store: Store) -> None:
    judge(store, more=[1, 2], less=[3, 4])
    two = Subscriber(email=READER.email, keywords=READER.keywords, max_papers=2)
    profiled = matcher(store, WordEmbedder(), two)
    ranking = profiled.rank(DAY_TWO)[two.email]
    assert len(ranking.matches) == 2 and ranking.matched > 2
    assert len(ranking.passed_over) == ranking.matched - 2
    assert profiled.rank_one(two.email, DAY_TWO) == ranking


def test_a_kept_profile_is_fitted_again_only_when_the_verdicts_change(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge(store, more=[1, 2], less=[3])
    first = matcher(store, WordEmbedder()).rank(DAY_TWO)
    kept = store.reader_profiles([READER.email])
    assert set(kept) == {READER.email}

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the kept profile was fitted again")

    monkeypatch.setattr(profiles, "fit", refuse)
    assert matcher(store, WordEmbedder()).rank(DAY_TWO) == first
    judge(store, more=[], less=[4])  # a new verdict: a new tag
    with pytest.raises(AssertionError, match="fitted again"):
        matcher(store, WordEmbedder()).rank(DAY_TWO)


def test_a_kept_profile_ranks_without_reading_the_readers_verdicts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge(store, more=[1, 2], less=[3, 4, 6])
    first = matcher(store, WordEmbedder()).rank([*DAY_ONE, *DAY_TWO])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("every verdict was read")

    monkeypatch.setattr(store, "verdicts", refuse)
    again = matcher(store, WordEmbedder()).rank([*DAY_ONE, *DAY_TWO])
    assert again == first  # the why-lines' marked papers came with the profile
    assert any(m.marked for m in again[READER.email].matches)
    # the papers judged are still left out: the store names them among the day's
    keys = {m.paper.key for m in again[READER.email].matches}
    assert keys.isdisjoint({f"2510.{n:05d}" for n in (1, 2, 3, 4, 6)})


def test_a_readonly_store_keeps_no_profile(tmp_path: Path, store: Store) -> None:
    judge(store, more=[1, 2], less=[3])
    with open_store(str(tmp_path / "digest.db"), base_dir=tmp_path, readonly=True) as readonly:
        matcher(readonly, WordEmbedder()).rank(DAY_TWO)
    assert store.reader_profiles([READER.email]) == {}


def test_without_verdicts_the_rules_alone_decide(store: Store) -> None:
    plain = compile_interests([READER], store=store, feedback=store)
    assert not isinstance(plain, ProfileMatcher)
    assert plain.rank(DAY_TWO) == keyword_matcher([READER]).rank(DAY_TWO)


# --- through the command line, on real API days -------------------------------------------------

HF = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "hf"


def test_a_run_follows_the_verdicts_given_with_digest_feedback(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[sources]]\nkind = "page"\npath = "feeds/*.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <d@example.org>"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\n'
    )

    def digest(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    def titles_on(day: str, sample: str) -> list[str]:
        for old in (tmp_path / "feeds").glob("*.json"):
            old.unlink()
        shutil.copy(HF / sample, tmp_path / "feeds" / "today.json")
        out = tmp_path / f"preview-{len(list(tmp_path.glob('preview-*')))}"
        digest("preview", "--date", day, "--out", str(out))
        (page,) = [p for p in out.glob("*.html") if p.name != "index.html"]
        return re.findall(r'class="paper-link"[^>]*>([^<]+)<', page.read_text(encoding="utf-8"))

    digest_one = titles_on("2025-03-24", "api_2025-03-24.json")
    digest("run", "--date", "2025-03-24")
    before = titles_on("2025-10-06", "api_2025-10-06.json")
    # The reader wants agents trained by reinforcement learning, not multi-agent frameworks.
    for key in ("2503.17287", "2503.17352"):
        digest("feedback", "ada@example.org", key, "more")
    for key in ("2503.16874", "2503.16905", "2503.16408"):
        digest("feedback", "ada@example.org", key, "less")
    after = titles_on("2025-10-06", "api_2025-10-06.json")
    assert digest_one and before != after
    assert after[0] == "A Practitioner&#39;s Guide to Multi-turn Agentic Reinforcement Learning"
    assert before.index(after[0]) > 0  # lifted by the verdicts
