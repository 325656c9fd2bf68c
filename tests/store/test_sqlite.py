"""The SQLite store on real files: never twice, never missed, one run at a time."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.errors import StoreError
from digest.models import Paper
from digest.store import Accepted, PlannedDigest, Refused
from digest.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.store.conftest import (
    ADA,
    API_SAMPLE,
    NOW,
    V1_STORE,
    api_papers,
    delivered,
    fail,
    owed,
    plan,
    side_files,
    text_page_papers,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore.open(tmp_path / "digest.db") as opened:
        yield opened


def test_a_run_killed_between_plan_and_send_leaves_papers_owed(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    with SqliteStore.open(path) as store:
        key = store.observe([Paper(title="Owed paper")], NOW).new[0].key
        plan(store, store.begin_run(NOW), ADA, [key], NOW, [])
    with SqliteStore.open(path) as store:
        assert [p.key for p in owed(store, ADA)] == [key]


def test_one_read_answers_for_ten_thousand_subscribers(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    emails = [f"user{n}@example.org" for n in range(10_000)]
    with SqliteStore.open(path) as store:
        papers = [Paper(arxiv_id=f"2401.{n:05d}", title=f"Paper {n}") for n in range(200)]
        store.observe(papers, NOW)
        run = store.begin_run(NOW)
        # 10k subscribers: 10 papers sent and 2 owed each, planned and recorded in bulk.
        sent = store.plan_digests(
            run,
            NOW.date(),
            [
                PlannedDigest(e, tuple(papers[(n + k) % 200].key for k in range(10)))
                for n, e in enumerate(emails)
            ],
            NOW,
        )
        store.mark_sent(run, [Accepted(d.row, d.email, "<m@x>", d.papers) for d in sent], NOW)
        later = NOW + dt.timedelta(hours=1)
        failed = store.plan_digests(
            run,
            later.date(),
            [
                PlannedDigest(e, tuple(papers[(n + k) % 200].key for k in (10, 11)))
                for n, e in enumerate(emails)
            ],
            later,
        )
        store.mark_failed(run, [Refused(d.row, d.email, "451") for d in failed], later)

    with SqliteStore.open(path) as store:
        everyone = store.delivered_keys(emails, NOW - dt.timedelta(days=1))
        owed_to = store.owed_papers(emails)
        none_yet = store.delivered_keys(emails[:2], NOW + dt.timedelta(days=1))
    assert all(len(everyone[e]) == 10 and len(owed_to[e]) == 2 for e in emails)
    assert everyone[emails[3]] == {papers[(3 + k) % 200].key for k in range(10)}
    assert [p.key for p in owed_to[emails[3]]] == [papers[13].key, papers[14].key]
    # Only digests sent in the window are read: never a subscriber's whole history.
    assert none_yet == {emails[0]: set(), emails[1]: set()}


def test_open_waits_out_a_refused_wal_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Processes opening a new file together can get "database is locked" from the WAL switch
    # itself, without SQLite's busy handler: open must wait, not fail the run.
    class RefusesWalTwice(sqlite3.Connection):
        refusals = 2

        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql.startswith("PRAGMA journal_mode") and RefusesWalTwice.refusals:
                RefusesWalTwice.refusals -= 1
                raise sqlite3.OperationalError("database is locked")
            return super().execute(sql, *args)  # type: ignore[arg-type]

    real_connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda *a, **k: real_connect(*a, factory=RefusesWalTwice, **k)
    )
    with SqliteStore.open(tmp_path / "digest.db") as store:
        assert store.stats().papers == 0
    assert RefusesWalTwice.refusals == 0
    with sqlite3.Connection(tmp_path / "digest.db") as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- migrations --------------------------------------------------------------------------------


def test_a_version_1_store_is_migrated_on_open_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    shutil.copyfile(V1_STORE, path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)

    with SqliteStore.open(path) as store:
        assert store.stats().schema_version == SCHEMA_VERSION == 9
        reckoning = Paper(title="RECKONING: Reasoning through\n  Dynamic Knowledge Encoding")
        mora = Paper(arxiv_id="2403.13248v2", title="Mora")
        seen = store.observe([reckoning, mora], NOW)
        assert seen.new == [] and len(seen.known) == 2
        assert delivered(store, ADA) == {reckoning.key}
        assert [p.key for p in owed(store, ADA)] == ["2403.13248"]
        ada = store.subscriber_states()["ada@example.org"]
        assert (ada.digests_sent, ada.papers_received) == (1, 1)
        assert [r.sent for r in store.list_seen() if r.key == reckoning.key] == [1]
    with sqlite3.connect(path) as conn:
        digests = conn.execute("SELECT status, attempts FROM digests ORDER BY status")
        assert digests.fetchall() == [("failed", 1), ("sent", 1)]
        titles = conn.execute("SELECT COUNT(*) FROM paper_titles").fetchone()
        assert titles == (3,)  # two backfilled, plus Mora's short title seen just now


def test_the_readers_holding_verdicts_get_a_revision_when_a_version_8_store_opens(
    tmp_path: Path,
) -> None:
    path = tmp_path / "digest.db"
    with SqliteStore.open(path) as store:
        store.observe([Paper(arxiv_id="2510.00001", title="A"), Paper(title="B")], NOW)
        for key in ("2510.00001", Paper(title="B").key):
            store.record_verdict(ADA, key, 1, NOW)
    with sqlite3.connect(path) as conn:  # back to version 8: no revisions, no marked papers
        conn.execute("DROP TABLE verdict_revisions")
        conn.execute("ALTER TABLE reader_profiles DROP COLUMN marked")
        conn.execute("PRAGMA user_version = 8")
    with SqliteStore.open(path) as store:
        assert store.verdict_revisions([ADA]) == {ADA: 2}
        assert store.verdicts() == {ADA: {"2510.00001": 1, Paper(title="B").key: 1}}


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    SqliteStore.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for readonly in (False, True):
        with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}") as caught:
            SqliteStore.open(path, readonly=readonly)
        assert caught.value.where == str(path) and "upgrade" in (caught.value.hint or "")


# --- read-only (promise 3) ---------------------------------------------------------------------


def test_readonly_store_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    with SqliteStore.open(path) as store:
        store.observe(text_page_papers(), NOW)
        fail(store, store.begin_run(NOW), ADA, [store.list_seen()[0].key], NOW)
    before, siblings = path.read_bytes(), side_files(path)
    assert "digest.db-wal" not in siblings

    with SqliteStore.open(path, readonly=True) as store:
        fresh = store.observe(api_papers(API_SAMPLE) + text_page_papers(), NOW, record=False)
        assert len(fresh.new) > 0 and len(fresh.known) > 100
        assert len(store.recent_papers(NOW - dt.timedelta(days=1))) == len(fresh.known)
        assert delivered(store, ADA) == set() and len(owed(store, ADA)) == 1
        assert store.list_seen(limit=3) and store.stats().papers == len(fresh.known)
        assert store.begin_run(NOW, dry_run=True) == 0
        for write in (
            lambda: store.observe(fresh.new, NOW),
            lambda: store.mark_sent(1, [Accepted(1, ADA, "<m>", ("x",))], NOW),
            lambda: store.plan_digests(1, NOW.date(), [PlannedDigest(ADA, ("x",))], NOW),
            lambda: store.forget(fresh.known[0].key),
            store.reset,
        ):
            with pytest.raises(StoreError, match="read-only"):
                write()
        with store.run_lock():
            pass

    assert path.read_bytes() == before
    assert side_files(path) == siblings


def test_readonly_on_a_missing_file_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "digest.db"
    with SqliteStore.open(path, readonly=True) as store:
        assert len(store.observe(api_papers(API_SAMPLE), NOW, record=False).new) > 0
        assert store.stats().papers == 0 and delivered(store, ADA) == set()
    assert not path.parent.exists()


def test_readonly_on_an_old_schema_reads_without_migrating_the_file(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    shutil.copyfile(V1_STORE, path)
    before = path.read_bytes()
    with SqliteStore.open(path, readonly=True) as store:
        assert store.stats().papers == 2
        reckoning = Paper(title="Reckoning: reasoning through dynamic knowledge encoding")
        known = store.observe([reckoning], NOW, record=False)
        assert known.new == [] and len(known.known) == 1
        assert [p.key for p in owed(store, ADA)] == ["2403.13248"]
    assert path.read_bytes() == before and side_files(path) == {}


def test_readonly_sees_what_a_concurrent_writer_commits(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    with SqliteStore.open(path) as writer:
        writer.observe([Paper(title="Before")], NOW)
    with SqliteStore.open(path, readonly=True) as reader:
        assert [p.title for p in reader.recent_papers(NOW)] == ["Before"]
        with SqliteStore.open(path) as writer:
            writer.observe([Paper(title="During")], NOW + dt.timedelta(seconds=1))
            titles = [p.title for p in reader.recent_papers(NOW)]
    assert titles == ["During", "Before"]


# --- not our file, unwritable (promise 6) ------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    path.write_bytes(b"title,abstract\n" + bytes(range(256)) * 20)
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="not a paper-digest store") as caught:
            SqliteStore.open(path, readonly=readonly)
        assert caught.value.where == str(path)
    assert path.read_bytes() == before


def test_another_programs_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE papers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO papers (name) VALUES ('theirs')")
    conn.close()
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="another program") as caught:
            SqliteStore.open(path, readonly=readonly)
        assert caught.value.where == str(path)
    assert path.read_bytes() == before and side_files(path) == {}


def test_an_empty_file_is_refused_not_taken_for_a_new_store(tmp_path: Path) -> None:
    # It used to become a store; but an empty file where a store was is a store truncated (a
    # full disk, a bad copy), and a new one there would send every paper again (issue 26).
    path = tmp_path / "digest.db"
    path.touch()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="the store file is empty"):
            SqliteStore.open(path, readonly=readonly)
    assert path.stat().st_size == 0
    path.unlink()
    with SqliteStore.open(path) as store:  # where none exists, a new one is made
        assert store.stats().schema_version == SCHEMA_VERSION


def test_a_store_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    path = blocker / "digest.db"
    with pytest.raises(StoreError) as caught:
        SqliteStore.open(path)
    assert caught.value.where == str(path)
    assert "writable directory" in (caught.value.hint or "")


def test_a_store_in_an_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        locked = Path("/proc")  # root ignores permissions, but procfs takes no new files
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
    path = locked / "digest.db"
    with pytest.raises(StoreError, match="unable to open") as caught:
        SqliteStore.open(path)
    assert caught.value.where == str(path) and "writable" in (caught.value.hint or "")
    assert not path.exists()


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    for readonly in (False, True):
        with pytest.raises(StoreError, match="is a directory") as caught:
            SqliteStore.open(tmp_path, readonly=readonly)
        assert caught.value.where == str(tmp_path)
