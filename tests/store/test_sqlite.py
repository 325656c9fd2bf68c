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
from digest.sources.hf_api import parse_api
from digest.sources.text_page import parse_text_page
from digest.store import Accepted, OpenDigest, PlannedDigest, Refused
from digest.store.sqlite import SCHEMA_VERSION, SqliteStore

FIXTURES = Path(__file__).parent.parent / "fixtures"
PAGES = sorted((FIXTURES / "samples" / "text-pages").glob("*.txt"))
API_FOR_PAGES = FIXTURES / "store" / "api_text_page_papers.json"
API_SAMPLE = FIXTURES / "samples" / "hf" / "api_2024-03-21.json"
V1_STORE = FIXTURES / "store" / "v1_store.sqlite3"
NOW = dt.datetime(2025, 1, 6, 7, 0, tzinfo=dt.UTC)
ADA = "ada@example.org"


def text_page_papers() -> list[Paper]:
    papers: list[Paper] = []
    for page in PAGES:
        papers += parse_text_page(
            page.read_text(encoding="utf-8"), origin=page.name, today=dt.date(2025, 1, 6)
        )
    return papers


def api_papers(path: Path) -> list[Paper]:
    return parse_api(path.read_text(encoding="utf-8"), origin=path.name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore.open(tmp_path / "digest.db") as opened:
        yield opened


EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def owed(store: SqliteStore, email: str) -> list[Paper]:
    return store.owed_papers([email])[email]


def delivered(store: SqliteStore, email: str, since: dt.datetime = EPOCH) -> set[str]:
    """What ``email`` must not be offered again among papers first seen since ``since``."""
    return store.delivered_keys([email], since)[email]


def plan(
    store: SqliteStore, run: int, email: str, keys: list[str], now: dt.datetime, over: list[str]
) -> OpenDigest:
    (digest,) = store.plan_digests(
        run, now.date(), [PlannedDigest(email, tuple(keys), tuple(over))], now
    )
    return digest


def send(
    store: SqliteStore,
    run: int,
    email: str,
    keys: list[str],
    now: dt.datetime,
    *,
    passed_over: list[str] | None = None,
) -> OpenDigest:
    """Plan one digest and record the channel's acceptance, as a run would."""
    digest = plan(store, run, email, keys, now, passed_over or [])
    store.mark_sent(run, [Accepted(digest.row, email, "<m@example.org>", tuple(keys))], now)
    return digest


def fail(store: SqliteStore, run: int, email: str, keys: list[str], now: dt.datetime) -> OpenDigest:
    digest = plan(store, run, email, keys, now, [])
    store.mark_failed(run, [Refused(digest.row, email, "SMTP 451 try later")], now)
    return digest


def side_files(path: Path) -> dict[str, int]:
    """The store file's siblings (``-wal``, ``-shm``, ...) and their sizes."""
    return {p.name: p.stat().st_size for p in path.parent.iterdir() if p.name != path.name}


# --- seen papers (promise 1) -------------------------------------------------------------------


def test_five_text_pages_twice_second_time_nothing_is_new(store: SqliteStore) -> None:
    papers = text_page_papers()
    distinct = {p.title_key for p in papers}
    assert len(papers) > len(distinct) > 100  # the pages repeat some papers (RECKONING, ...)

    first = store.observe(papers, NOW)
    second = store.observe(papers, NOW + dt.timedelta(days=1))

    assert len(first.new) == len(distinct) and first.known == []
    assert second.new == []
    assert {p.key for p in second.known} == {p.key for p in first.new}
    assert store.stats().papers == len(distinct)


def test_same_paper_from_api_with_id_version_or_rewrapped_title_is_not_new(
    store: SqliteStore,
) -> None:
    pages = text_page_papers()
    store.observe(pages, NOW)
    page_key = {p.title_key: p.key for p in pages}

    raw = API_FOR_PAGES.read_text(encoding="utf-8")
    assert "2309.06922v2" in raw and "Movement\\n  through" in raw  # what the fixture exercises
    seen = store.observe(api_papers(API_FOR_PAGES), NOW + dt.timedelta(hours=1))

    assert seen.new == []
    assert len(seen.known) == 3
    for paper in seen.known:
        assert paper.key == page_key[paper.title_key]  # the key the text page stored it under
        assert paper.key.startswith("title:") and paper.arxiv_id is not None
    # The arXiv ids are now known, with or without version, and so is the merged record.
    hydra = next(p for p in seen.known if p.title.startswith("Hydra"))
    assert hydra.arxiv_id == "2309.06922"
    rows = {row.key: row for row in store.list_seen()}
    assert rows[hydra.key].arxiv_id == "2309.06922"
    again = store.observe(
        [Paper(arxiv_id="2309.06922v3", title="Hydra (renamed on arXiv)")], NOW, record=False
    )
    assert again.new == [] and again.known[0].key == hydra.key
    # And the same text pages read once more are still not new.
    assert store.observe(pages, NOW + dt.timedelta(days=1)).new == []


def test_api_first_then_text_page_keeps_the_arxiv_key(store: SqliteStore) -> None:
    store.observe(api_papers(API_FOR_PAGES), NOW)
    seen = store.observe(text_page_papers(), NOW + dt.timedelta(hours=1))
    reckoning = [p for p in seen.known if p.title.startswith("RECKONING")]
    assert [p.key for p in reckoning] == ["2305.06349"]
    assert len(seen.known) == 3
    assert "RECKONING" not in " ".join(p.title for p in seen.new)


def test_two_arxiv_ids_under_one_title_are_two_papers(store: SqliteStore) -> None:
    first = store.observe([Paper(arxiv_id="2401.00001", title="Attention")], NOW)
    second = store.observe([Paper(arxiv_id="2401.00002", title="attention.")], NOW)
    assert [p.key for p in first.new] == ["2401.00001"]
    assert [p.key for p in second.new] == ["2401.00002"]
    # A copy without id is the one seen first.
    third = store.observe([Paper(title="ATTENTION")], NOW, record=False)
    assert [p.key for p in third.known] == ["2401.00001"]


def test_duplicates_within_one_call_merge_into_one_entry(store: SqliteStore) -> None:
    text = Paper(title="Order Matters: Sequence to sequence for sets", abstract="short")
    api = Paper(arxiv_id="1511.06391v4", title="Order matters:\n  sequence to sequence for sets")
    seen = store.observe([text, api, text], NOW)
    assert len(seen.new) == 1 and seen.known == []
    assert seen.new[0].key == text.key and seen.new[0].arxiv_id == "1511.06391"
    assert store.observe([api], NOW, record=False).known[0].key == text.key


def test_observe_without_record_writes_nothing(store: SqliteStore) -> None:
    papers = api_papers(API_SAMPLE)
    preview = store.observe(papers, NOW, record=False)
    assert len(preview.new) == len({p.key for p in papers}) > 0
    assert store.stats().papers == 0
    assert store.recent_papers(NOW - dt.timedelta(days=1)) == []


def test_recent_papers_are_the_latest_records_newest_first(store: SqliteStore) -> None:
    older = Paper(title="An older paper")
    store.observe([older], NOW - dt.timedelta(days=5))
    store.observe([Paper(title="A newer paper")], NOW)
    store.observe([Paper(title="An older paper", arxiv_id="2401.01234", upvotes=7)], NOW)

    recent = store.recent_papers(NOW - dt.timedelta(days=7))
    assert [p.title for p in recent] == ["A newer paper", "An older paper"]
    assert recent[1].key == older.key and recent[1].upvotes == 7
    assert [p.title for p in store.recent_papers(NOW - dt.timedelta(days=1))] == ["A newer paper"]


def test_naive_times_are_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        store.observe([Paper(title="x")], dt.datetime(2025, 1, 1))


# --- the ledger (promises 1 and 2) -------------------------------------------------------------


def test_failed_delivery_is_owed_until_sent_then_never_again(store: SqliteStore) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new[:3]
    keys = [p.key for p in papers]
    run = store.begin_run(NOW)
    first = fail(store, run, ADA, keys, NOW)
    store.finish_run(run, NOW, "1 failed")

    # Long after the lookback window, the papers are still owed.
    later = NOW + dt.timedelta(days=30)
    assert store.recent_papers(later - dt.timedelta(days=3)) == []
    assert sorted(p.key for p in owed(store, "Ada@Example.org")) == sorted(keys)
    assert delivered(store, ADA) == set()

    run = store.begin_run(later)
    again = send(store, run, ADA, keys, later)
    assert again.digest_id == first.digest_id  # the open digest is re-used: same name
    assert owed(store, ADA) == []
    assert delivered(store, ADA) == set(keys)

    # A sent digest is never turned back into an owed one.
    store.mark_failed(run, [Refused(again.row, ADA, "late failure")], later)
    assert owed(store, ADA) == [] and delivered(store, ADA) == set(keys)
    stats = store.stats()
    assert (stats.sent, stats.pending, stats.failed, stats.subscribers, stats.runs) == (
        3,
        0,
        0,
        1,
        2,
    )
    assert stats.digests == 1
    assert delivered(store, "bob@example.org") == set()
    state = store.subscriber_states()["ada@example.org"]
    assert (state.digests_sent, state.papers_received, state.bounces) == (1, 3, 0)


def test_recording_a_sent_digest_twice_counts_it_once(store: SqliteStore) -> None:
    key = store.observe([Paper(arxiv_id="2401.00001", title="Once")], NOW).new[0].key
    run = store.begin_run(NOW)
    digest = plan(store, run, ADA, [key], NOW, [])
    accepted = [Accepted(digest.row, ADA, "<m@x>", (key,))]
    assert store.mark_sent(run, accepted, NOW) == 1
    assert store.mark_sent(run, accepted, NOW) == 0  # a journal replayed after the store had it
    assert store.list_seen()[0].sent == 1
    assert store.subscriber_states()["ada@example.org"].digests_sent == 1


def test_papers_passed_over_by_a_sent_digest_are_not_offered_again(store: SqliteStore) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new[:5]
    sent, over = [p.key for p in papers[:2]], [p.key for p in papers[2:]]
    run = store.begin_run(NOW)
    send(store, run, ADA, sent, NOW, passed_over=over)
    assert delivered(store, ADA) == set(sent) | set(over)
    assert owed(store, ADA) == []
    assert store.stats().sent == 2  # passed over is not delivered
    assert delivered(store, "bob@example.org") == set()
    assert store.forget(over[0])
    assert delivered(store, ADA) == set(sent) | set(over[1:])


def test_deliveries_are_read_only_for_the_window(store: SqliteStore) -> None:
    old = store.observe([Paper(arxiv_id="2401.00001", title="Old")], NOW).new[0].key
    send(store, store.begin_run(NOW), ADA, [old], NOW)
    later = NOW + dt.timedelta(days=10)
    new = store.observe([Paper(arxiv_id="2401.00002", title="New")], later).new[0].key
    send(store, store.begin_run(later), ADA, [new], later)
    assert delivered(store, ADA, since=later - dt.timedelta(days=4)) == {new}
    assert delivered(store, ADA) == {old, new}


def test_a_run_killed_between_plan_and_send_leaves_papers_owed(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    with SqliteStore.open(path) as store:
        key = store.observe([Paper(title="Owed paper")], NOW).new[0].key
        plan(store, store.begin_run(NOW), ADA, [key], NOW, [])
    with SqliteStore.open(path) as store:
        assert [p.key for p in owed(store, ADA)] == [key]


def test_a_second_digest_on_one_day_gets_a_name_of_its_own(store: SqliteStore) -> None:
    keys = [p.key for p in store.observe(api_papers(API_SAMPLE), NOW).new[:2]]
    run = store.begin_run(NOW)
    first = send(store, run, ADA, keys[:1], NOW)
    second = send(store, run, ADA, keys[1:], NOW + dt.timedelta(hours=5))
    assert second.digest_id == f"{first.digest_id}-2"


def test_prune_drops_old_digests_and_records_but_keeps_identities_and_what_is_owed(
    store: SqliteStore,
) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new
    run = store.begin_run(NOW)
    send(store, run, ADA, [papers[0].key], NOW)
    fail(store, run, "bob@example.org", [papers[1].key], NOW)
    report = store.prune(NOW + dt.timedelta(days=40), keep=dt.timedelta(days=10))
    assert report.digests == 1 and report.records == len(papers) - 1
    # Identity survives: the same papers read again are not new, and Bob's are still owed.
    assert store.observe(api_papers(API_SAMPLE), NOW + dt.timedelta(days=40)).new == []
    assert [p.key for p in owed(store, "bob@example.org")] == [papers[1].key]
    assert store.subscriber_states()["ada@example.org"].digests_sent == 1


def test_forget_by_versioned_id_and_reset(store: SqliteStore) -> None:
    store.observe(api_papers(API_FOR_PAGES), NOW)
    run = store.begin_run(NOW)
    send(store, run, ADA, ["2305.06349", "2308.10874"], NOW)

    assert store.forget("2305.06349v3") is True
    assert store.forget("2305.06349") is False
    assert delivered(store, ADA) == {"2308.10874"}
    assert [p.key for p in store.observe(api_papers(API_FOR_PAGES), NOW, record=False).new] == [
        "2305.06349"
    ]

    store.reset()
    stats = store.stats()
    assert (stats.papers, stats.sent, stats.runs) == (0, 0, 0)
    assert stats.schema_version == SCHEMA_VERSION
    assert len(store.observe(api_papers(API_FOR_PAGES), NOW).new) == 3


def test_list_seen_and_stats_describe_the_store(store: SqliteStore) -> None:
    store.observe([Paper(title="First")], NOW - dt.timedelta(days=1))
    store.observe([Paper(arxiv_id="2401.01234", title="Second")], NOW)
    send(store, store.begin_run(NOW), ADA, ["2401.01234"], NOW)

    rows = store.list_seen()
    assert [(r.title, r.sent) for r in rows] == [("Second", 1), ("First", 0)]
    assert rows[0].first_seen == NOW and rows[0].arxiv_id == "2401.01234"
    assert len(store.list_seen(limit=1)) == 1
    stats = store.stats()
    assert stats.first_seen == NOW - dt.timedelta(days=1) and stats.last_seen == NOW
    assert stats.size > 0
    assert dict(stats.as_rows())["papers seen"] == "2"


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
            return super().execute(sql, *args)

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
        assert store.stats().schema_version == SCHEMA_VERSION == 5
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


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    path.touch()
    with SqliteStore.open(path) as store:
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
