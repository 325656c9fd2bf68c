"""The Atom channel through real runs: valid feeds, each paper once, newest first, crash-safe."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import feedparser
import httpx
import pytest

from digest import pipeline
from digest.config import Config, parse_config
from digest.deliver.atom import KEEP, feed_name
from digest.errors import StoreError
from digest.report import RunReport
from digest.stage_settings import open_configured_channel
from digest.store.sqlite import SqliteStore

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "text-pages"
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


def make_config(folder: Path, pages: list[str]) -> Config:
    (folder / "pages").mkdir(exist_ok=True)
    for name in pages:
        shutil.copy(PAGES / name, folder / "pages" / name)
    text = (
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "atom"\nfeeds = "feeds"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nname = "Ada"\n'
        'keywords = ["reasoning", "attention"]\nmax_papers = 500\n'
    )
    (folder / "digest.toml").write_text(text)
    return parse_config(text, folder / "digest.toml")


def run(config: Config, now: dt.datetime) -> RunReport:
    def offline(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no network: {request.url}")

    with (
        httpx.Client(transport=httpx.MockTransport(offline)) as client,
        SqliteStore.open(config.store_path) as store,
        open_configured_channel(config) as channel,
    ):
        return pipeline.run(
            config, client=client, store=store, channel=channel, now=now, day=now.date()
        )


def read_feed(config: Config) -> feedparser.FeedParserDict:
    path = config.resolve("feeds") / feed_name("ada@example.org")
    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")  # well-formed, and read as Atom
    assert feed.version == "atom10"
    return feed


def test_two_runs_give_one_valid_feed_with_both_days_papers_once_each(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["000_a074cbbb5062396c.txt"])
    first = run(config, NOW)
    day_one = read_feed(config)
    assert first.exit_code == 0 and len(day_one.entries) == first.outcomes[0].papers > 0

    make_config(tmp_path, ["001_bf20a2f13052aac5.txt"])  # a new page appears the next day
    second = run(config, NOW + dt.timedelta(days=1))
    feed = read_feed(config)
    ids = [entry.id for entry in feed.entries]
    assert len(ids) == len(set(ids)) == first.outcomes[0].papers + second.outcomes[0].papers
    # newest first: the second day's entries lead
    assert [e.updated for e in feed.entries] == sorted(
        (e.updated for e in feed.entries), reverse=True
    )
    titles = {entry.title for entry in feed.entries}
    assert "RECKONING: Reasoning through Dynamic Knowledge Encoding" in titles
    links = [link.href for e in feed.entries for link in e.get("links", []) if "href" in link]
    assert all(href.startswith("https://") for href in links if not href.startswith("urn:"))
    assert all("Why: matched" in e.summary for e in feed.entries)
    assert feed.feed.title == "Daily Papers digest for Ada"


def test_the_feed_keeps_only_the_newest_entries(tmp_path: Path) -> None:
    config = make_config(tmp_path, [p.name for p in sorted(PAGES.glob("*.txt"))])
    report = run(config, NOW)
    assert report.outcomes[0].papers > KEEP
    assert len(read_feed(config).entries) == KEEP


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs, no handler catches it."""


def test_a_crash_between_writing_and_recording_leaves_a_valid_feed_and_no_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, ["000_a074cbbb5062396c.txt"])

    def crash(*args: object, **kwargs: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(SqliteStore, "mark_sent", crash)
        with pytest.raises(Killed):
            run(config, NOW)
    written = read_feed(config)  # the feed was written whole before the crash
    assert written.entries

    again = run(config, NOW + dt.timedelta(days=1))
    # The journal told the next run what had been delivered: it records it, sends nothing.
    assert again.exit_code == 0 and not any(o.sent for o in again.outcomes)
    feed = read_feed(config)
    assert sorted(e.id for e in feed.entries) == sorted(e.id for e in written.entries)
    assert not list(config.resolve("feeds").glob(".*.tmp"))


def test_a_store_that_cannot_record_is_caught_up_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, ["000_a074cbbb5062396c.txt"])

    def refuse(*args: object, **kwargs: object) -> None:
        raise StoreError("database is locked", where="digest.db")

    with monkeypatch.context() as patch:
        patch.setattr(SqliteStore, "mark_sent", refuse)
        first = run(config, NOW)
    assert first.exit_code == 1 and first.unrecorded == 1
    assert any("wait in the journal" in line for line in first.problems())
    entries = len(read_feed(config).entries)
    again = run(config, NOW + dt.timedelta(days=1))
    assert not any(o.sent for o in again.outcomes) and again.exit_code == 0
    assert len(read_feed(config).entries) == entries
    with SqliteStore.open(config.store_path) as store:
        assert store.stats().digests == 1
