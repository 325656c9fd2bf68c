"""The PostgreSQL store on a throwaway cluster: its schema history applied once by hosts opening
together, read-only stores that change nothing, claims and leases between workers, the planning
lock, and errors that say what is wrong."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from digest.errors import StoreError
from digest.models import Paper
from digest.store import PlannedDigest, open_store
from digest.store.migrations import SCHEMA_VERSION
from digest.store.postgres import PostgresStore
from tests.postgres_cluster import Cluster

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {str(row[0]) for row in rows}


def test_hosts_opening_a_new_database_together_apply_each_step_once(
    pg_url: str, tmp_path: Path
) -> None:
    def open_one(_: int) -> int:
        with open_store(pg_url, base_dir=tmp_path) as store:
            return store.stats().schema_version

    with ThreadPoolExecutor(6) as pool:
        versions = list(pool.map(open_one, range(6)))
    assert versions == [SCHEMA_VERSION] * 6
    with psycopg.connect(pg_url) as conn:
        applied = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [row[0] for row in applied] == list(range(4, SCHEMA_VERSION + 1))


def test_a_readonly_store_on_a_new_database_creates_nothing(pg_url: str, tmp_path: Path) -> None:
    with open_store(pg_url, base_dir=tmp_path, readonly=True) as store:
        stats = store.stats()
        assert (stats.papers, stats.schema_version) == (0, SCHEMA_VERSION)
        assert store.observe([Paper(title="Seen only in preview")], NOW, record=False).new
        with pytest.raises(StoreError, match="read-only"):
            store.begin_run(NOW)
    assert tables(pg_url) == set()


def test_a_database_from_a_newer_version_is_refused(pg_url: str, tmp_path: Path) -> None:
    open_store(pg_url, base_dir=tmp_path).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (%s, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}") as caught:
        open_store(pg_url, base_dir=tmp_path)
    assert caught.value.hint == "upgrade paper-digest on this host"


def test_a_password_in_the_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="holds a password") as caught:
        open_store("postgresql://digest:secret@db.example.org/digest", base_dir=tmp_path)
    assert "secret" not in str(caught.value) and "pgpass" in (caught.value.hint or "")


def test_a_server_that_is_not_there_is_one_clear_error(pg_cluster: Cluster, tmp_path: Path) -> None:
    url = f"postgresql://digest@/nowhere?host={pg_cluster.folder}&port=1"
    with pytest.raises(StoreError, match="cannot connect") as caught:
        open_store(url, base_dir=tmp_path)
    assert "\n" not in str(caught.value)


def planned_store(url: str, tmp_path: Path, readers: int) -> PostgresStore:
    store = open_store(url, base_dir=tmp_path)
    assert isinstance(store, PostgresStore)
    key = store.observe([Paper(arxiv_id="2611.00001", title="A paper")], NOW).new[0].key
    run = store.begin_run(NOW)
    digests = [PlannedDigest(f"r{n}@example.org", (key,), (), 1, 1) for n in range(readers)]
    store.plan_digests(run, NOW.date(), digests, NOW)
    return store


def test_two_workers_never_claim_the_same_digest(pg_url: str, tmp_path: Path) -> None:
    planned_store(pg_url, tmp_path, 500).close()
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def work(name: str) -> None:
        with open_store(pg_url, base_dir=tmp_path) as store:
            while batch := store.claim_digests(name, 7, NOW, LEASE):
                claimed[name] += [d.row for d in batch]

    threads = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    both = claimed["a"] + claimed["b"]
    assert len(both) == len(set(both)) == 500
    assert claimed["a"] and claimed["b"]


def test_a_claim_lasts_its_lease_then_another_worker_takes_it(pg_url: str, tmp_path: Path) -> None:
    store = planned_store(pg_url, tmp_path, 3)
    first = store.claim_digests("dead", 10, NOW, dt.timedelta(seconds=60))
    assert len(first) == 3
    assert store.claim_digests("alive", 10, NOW + dt.timedelta(seconds=59), LEASE) == []
    assert store.claimed_elsewhere("alive", NOW) == NOW + dt.timedelta(seconds=60)
    assert store.work_in_progress(NOW.date() + dt.timedelta(days=1), NOW)  # a live claim
    later = NOW + dt.timedelta(seconds=61)
    taken = store.claim_digests("alive", 10, later, LEASE)
    assert [d.row for d in taken] == [d.row for d in first]
    assert store.claimed_elsewhere("alive", later) is None
    store.renew_claims("alive", later + dt.timedelta(seconds=25), LEASE)
    assert store.claim_digests("other", 10, later + dt.timedelta(seconds=40), LEASE) == []
    store.release_claims("alive")
    assert len(store.claim_digests("other", 10, later, LEASE)) == 3
    store.close()


def test_one_plan_at_a_time_across_connections(pg_url: str, tmp_path: Path) -> None:
    held = threading.Event()
    order: list[str] = []
    with (
        open_store(pg_url, base_dir=tmp_path) as first,
        open_store(pg_url, base_dir=tmp_path) as second,
    ):

        def other() -> None:
            held.wait(10)
            with second.planning_lock():
                order.append("second plans")

        thread = threading.Thread(target=other)
        thread.start()
        with first.planning_lock():
            held.set()
            time.sleep(0.5)  # the other connection is waiting for the lock meanwhile
            order.append("first plans")
        thread.join(10)
    assert order == ["first plans", "second plans"]


def test_stats_name_the_backend_and_measure_its_tables(pg_url: str, tmp_path: Path) -> None:
    store = planned_store(pg_url, tmp_path, 2)
    stats = store.stats()
    assert stats.location == pg_url and stats.size > 0
    assert (stats.papers, stats.pending, stats.schema_version) == (1, 2, SCHEMA_VERSION)
    assert store.journal_path.parent == tmp_path
    store.close()
