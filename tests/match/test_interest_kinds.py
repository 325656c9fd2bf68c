"""The cases the field found, on real sample records: synonyms among keywords are one interest,
organisations match on word and CamelCase boundaries, and the submitter's organisation counts."""

from __future__ import annotations

import copy
import json
from typing import Any

from digest.match.keywords import compile_interests
from digest.models import Match, Paper
from digest.sources.hf_api import papers_from_entries
from tests.match.test_keywords import SAMPLES, papers, sub  # noqa: F401

API = SAMPLES / "hf" / "api_2025-10-06.json"


def entries() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(API.read_text(encoding="utf-8"))
    return loaded


def ranked(found: list[Paper], **interests: Any) -> list[Match]:
    return compile_interests([sub(**interests)]).match(found)["ada@example.org"]


def test_synonyms_are_not_rewarded_twice(papers: list[Paper]) -> None:  # noqa: F811
    got = ranked(papers, keywords=["RL", "reinforcement learning"])
    both = [m for m in got if len(m.keywords) == 2 and not m.in_title]
    one = [m for m in got if len(m.keywords) == 1 and not m.in_title]
    assert both and one  # the samples have papers naming one and papers naming both
    # among papers hit outside the title, upvotes decide, not how many synonyms were found
    rest = [m for m in got if not m.in_title]
    upvotes = [m.paper.upvotes if m.paper.upvotes is not None else -1 for m in rest]
    assert upvotes == sorted(upvotes, reverse=True)
    assert {m.score for m in rest} == {1.0}


def _with_organization(entry: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    changed = copy.deepcopy(entry)
    changed["paper"].pop("organization", None)
    changed.pop("organization", None)
    target = changed["paper"] if where == "paper" else changed
    target["submitterOrganization" if where == "submitter" else "organization"] = {
        "name": name,
        "fullname": name,
    }
    return changed


def test_organisations_match_on_camel_case_boundaries() -> None:
    real = entries()
    deepmind = _with_organization(real[0], "paper", "GoogleDeepMind")
    googler = _with_organization(real[1], "paper", "Googlers United")
    google = next(e for e in real if (e["paper"].get("organization") or {}).get("name") == "google")
    found = papers_from_entries([deepmind, googler, google], origin="test")
    picked = {m.paper.arxiv_id for m in ranked(found, organizations=["Google"])}
    assert picked == {deepmind["paper"]["id"], google["paper"]["id"]}
    mind = {m.paper.arxiv_id for m in ranked(found, organizations=["DeepMind"])}
    assert mind == {deepmind["paper"]["id"]}


def test_the_submitter_organisation_is_matched_too() -> None:
    real = entries()
    submitted = _with_organization(real[2], "submitter", "GoogleDeepMind")
    found = papers_from_entries([submitted, real[3]], origin="test")
    assert found[0].organization is None and found[0].submitter_organization == "GoogleDeepMind"
    picked = [m.paper.arxiv_id for m in ranked(found, organizations=["Google DeepMind"])]
    assert picked == [submitted["paper"]["id"]]
