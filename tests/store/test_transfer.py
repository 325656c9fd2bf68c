"""`digest store migrate`: 30 days of history moved from SQLite to PostgreSQL and back, counts
equal on both sides, and runs afterwards send nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from digest import pipeline
from digest.config import parse_config
from digest.errors import StoreError
from digest.report import RunReport
from digest.stage_settings import open_configured_channel
from digest.store import open_store
from digest.store.transfer import copy_store

START = dt.datetime(2026, 10, 1, 7, 0, tzinfo=dt.UTC)
READERS = ("ada@example.org", "bob@example.org", "cy@example.org")


def day_papers(day: int) -> list[dict[str, object]]:
    return [
        {"paper": {"id": f"2610.{day:02d}{n:03d}", "title": f"Agents and models, day {day} #{n}",
                   "summary": "An agent model.", "upvotes": n}}
        for n in range(4)
    ]  # fmt: skip


def write_config(folder: Path) -> Path:
    text = (
        '[[sources]]\nkind = "page"\npath = "today.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\n'
        + "".join(f'[[subscribers]]\nemail = "{r}"\nkeywords = ["agent"]\n' for r in READERS)
    )
    path = folder / "digest.toml"
    path.write_text(text)
    return path


def run_day(config_path: Path, location: str, day: int) -> RunReport:
    (config_path.parent / "today.json").write_text(json.dumps(day_papers(day)))
    config = parse_config(config_path.read_text(), config_path)
    now = START + dt.timedelta(days=day)
    with (
        open_store(location, base_dir=config_path.parent) as store,
        open_configured_channel(config) as channel,
        httpx.Client() as client,
    ):
        return pipeline.run(
            config, client=client, store=store, channel=channel, now=now, day=now.date()
        )


def stats(config: Path, location: str) -> dict[str, str]:
    """`digest seen stats` for the store at ``location``, without the lines that name it."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    env["DIGEST_STORE_URL"] = location
    done = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "seen", "stats"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [(line[:22].strip(), line[22:].strip()) for line in done.stdout.splitlines()]
    return {name: value for name, value in rows if name not in ("store", "size (bytes)")}


def migrate(config: Path, source: str, target: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    env["DIGEST_STORE_URL"] = source
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "store", "migrate",
         "--to", target],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip


def test_thirty_days_move_to_postgresql_and_back(tmp_path: Path, pg_url: str) -> None:
    config = write_config(tmp_path)
    sqlite_store = str(tmp_path / "digest.db")
    for day in range(30):
        report = run_day(config, sqlite_store, day)
        assert report.exit_code == 0 and sum(o.sent for o in report.outcomes) == 3
    before = stats(config, sqlite_store)
    assert before["digests sent"] != "0" and before["runs"] == "30"

    done = migrate(config, sqlite_store, pg_url)
    assert done.returncode == 0, done.stderr
    assert "verified:" in done.stdout
    assert stats(config, pg_url) == before

    # the next day on PostgreSQL: yesterday's papers again (nothing twice) and today's once
    (tmp_path / "today.json").write_text(json.dumps(day_papers(29) + day_papers(30)))
    outbox_before = len(list((tmp_path / "outbox").glob("*.eml")))
    config_data = parse_config(config.read_text(), config)
    now = START + dt.timedelta(days=30)
    with (
        open_store(pg_url, base_dir=tmp_path) as store,
        open_configured_channel(config_data) as channel,
        httpx.Client() as client,
    ):
        report = pipeline.run(
            config_data, client=client, store=store, channel=channel, now=now, day=now.date()
        )
    assert [o.papers for o in report.outcomes] == [4, 4, 4]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == outbox_before + 3

    back = str(tmp_path / "back.db")
    done = migrate(config, pg_url, back)
    assert done.returncode == 0, done.stderr
    assert stats(config, back) == stats(config, pg_url)


def test_the_target_must_be_empty_and_the_source_is_never_changed(
    tmp_path: Path, pg_url: str
) -> None:
    config = write_config(tmp_path)
    run_day(config, str(tmp_path / "a.db"), 0)
    run_day(config, pg_url, 0)
    with (
        open_store(str(tmp_path / "a.db"), base_dir=tmp_path) as source,
        open_store(pg_url, base_dir=tmp_path) as target,
    ):
        before = source.stats()
        with pytest.raises(StoreError, match="not empty"):
            copy_store(source, target)
        assert source.stats() == before


def test_verdicts_their_revisions_and_profiles_move_with_the_store(
    tmp_path: Path, pg_url: str
) -> None:
    from digest.models import Paper
    from digest.store import KeptProfile

    papers = [Paper(arxiv_id=f"2610.0000{n}", title=f"Paper {n}") for n in range(3)]
    profile = KeptProfile("tag", b"\x00\x00\x80?" * 3, ("2610.00000",))
    with open_store(str(tmp_path / "digest.db"), base_dir=tmp_path) as source:
        source.observe(papers, START)
        source.record_verdict(READERS[0], "2610.00000", 1, START)
        source.record_verdict(READERS[0], "2610.00001", -1, START)
        source.record_verdict(READERS[1], "2610.00002", 1, START)
        source.save_reader_profiles({READERS[0]: profile})
        with open_store(pg_url, base_dir=tmp_path) as target:
            copy_store(source, target)
            for store in (source, target):
                assert store.verdict_revisions(READERS) == {READERS[0]: 2, READERS[1]: 1}
                assert store.reader_profiles(READERS) == {READERS[0]: profile}
            assert target.verdicts() == source.verdicts()
            target.record_verdict(READERS[1], "2610.00002", -1, START)  # the count goes on
            assert target.verdict_revisions([READERS[1]]) == {READERS[1]: 2}
