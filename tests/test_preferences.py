"""A reader's page changes: the form read as differences from the TOML entry, checked by the
config's rules, applied over the entry (an operator's later edit of another key still counts),
and the effective list written back as TOML that the config loader reads as it was."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
from pydantic import TypeAdapter

from digest import preferences
from digest.models import Subscriber

TODAY = dt.date(2025, 10, 6)
ADA = Subscriber(email="ada@example.org", keywords=("agent",), exclude=("survey",))


def form(**fields: str) -> dict[str, str]:
    """The form as the page posts it: every box with the entry's values, then ``fields``."""
    base = {
        "keywords": "agent", "about": "", "exclude": "survey", "max_papers": "15",
        "frequency": "daily", "weekday": "monday", "day": "1", "pause": "keep",
    }  # fmt: skip
    return {**base, **fields}


def test_an_unchanged_form_saves_no_difference() -> None:
    settings, problems = preferences.read_form(ADA, form(), today=TODAY)
    assert (settings, problems) == ({}, [])


def test_only_what_differs_from_the_entry_is_kept() -> None:
    settings, problems = preferences.read_form(
        ADA,
        form(keywords="agent\n  web   agent \nagent", frequency="weekly", weekday="friday"),
        today=TODAY,
    )
    assert problems == []
    assert settings == {
        "keywords": ["agent", "web agent"],  # spaces folded, repeats dropped
        "frequency": "weekly",
        "weekday": "friday",
    }
    changed = preferences.apply(ADA, settings)
    assert changed.keywords == ("agent", "web agent") and changed.weekday == "friday"
    assert changed.exclude == ADA.exclude
    assert preferences.changed_keys(settings) == ["keywords", "frequency", "weekday"]


def test_a_weekday_is_kept_only_for_a_weekly_digest_and_a_day_only_for_a_monthly_one() -> None:
    settings, _ = preferences.read_form(ADA, form(weekday="friday", day="12"), today=TODAY)
    assert settings == {}
    settings, _ = preferences.read_form(ADA, form(frequency="monthly", day="31"), today=TODAY)
    assert settings == {"frequency": "monthly", "day": 31}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"max_papers": "many"}, "max_papers: write a whole number"),
        ({"max_papers": "0"}, "max_papers"),
        ({"max_papers": "99999999"}, "max_papers: write a whole number"),
        ({"frequency": "hourly"}, "frequency: choose daily, weekly or monthly"),
        ({"weekday": "caturday", "frequency": "weekly"}, "weekday: choose a day of the week"),
        ({"day": "32", "frequency": "monthly"}, "day"),
        ({"pause": "52"}, "pause: choose how many weeks"),
        ({"keywords": "agent\n+++"}, "+++"),
        ({"keywords": "survey"}, "survey"),  # wanted and excluded at once
        ({"keywords": "\n".join(f"term{i}" for i in range(60))}, "keywords: at most 50 lines"),
        ({"about": "web agents\nPapers about my research"}, "“Papers about my research” names no"),
    ],
)
def test_a_bad_value_is_named_with_its_field(fields: dict[str, str], named: str) -> None:
    _, problems = preferences.read_form(ADA, form(**fields), today=TODAY)
    assert problems, fields
    assert any(named in problem for problem in problems), problems


def test_about_is_refused_where_the_semantic_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preferences, "semantic_installed", lambda: False)
    _, problems = preferences.read_form(ADA, form(about="web agents"), today=TODAY)
    assert problems == ["about: interests in plain words are not installed on this server"]


def test_a_pause_is_counted_from_today_and_ended_by_choosing_no_pause() -> None:
    settings, _ = preferences.read_form(ADA, form(pause="2"), today=TODAY)
    assert settings == {"paused_until": "2025-10-20"}
    paused = preferences.apply(ADA, settings)
    assert paused.paused_until == dt.date(2025, 10, 20)
    settings, _ = preferences.read_form(paused, form(pause="keep"), today=TODAY)
    assert settings == {}
    resumed, _ = preferences.read_form(paused, form(pause="0"), today=TODAY)
    assert resumed == {"paused_until": None}


def test_saved_changes_sit_over_the_entry_and_a_later_edit_of_another_key_counts() -> None:
    saved = {"ada@example.org": {"max_papers": 5}}
    edited = Subscriber(email="Ada@Example.org", keywords=("robot",), max_papers=15)
    (now,) = preferences.effective([edited], saved)
    assert now.max_papers == 5 and now.keywords == ("robot",)


def test_a_saved_value_this_version_cannot_take_leaves_the_entry_as_it_is() -> None:
    for saved in ({"max_papers": 0}, {"frequency": "hourly"}, {"paused_until": "soon"}):
        assert preferences.apply(ADA, saved) == ADA
    assert preferences.apply(ADA, {"email": "eve@example.org", "name": "Eve"}) == ADA


def test_export_writes_toml_the_config_reads_back_as_it_was() -> None:
    hostile = Subscriber(
        email="bob@example.org",
        name='Bob "the \\ builder"\u007f',
        keywords=("naïve bayes", 'quote " and \\ back', "tab\there"),
        frequency="monthly",
        day=31,
        paused_until=dt.date(2025, 11, 1),
        max_papers=7,
    )
    text = preferences.export_toml([ADA, hostile])
    entries = tomllib.loads(text)["subscribers"]
    assert entries[0] == {"email": "ada@example.org", "keywords": ["agent"], "exclude": ["survey"]}
    back = TypeAdapter(list[Subscriber]).validate_python(entries)
    assert back == [ADA, hostile]
