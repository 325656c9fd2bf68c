"""The one schema history: numbered in order, every dialect reaching the same version, and each
step's SQL what the dialect runs."""

from __future__ import annotations

import sqlite3

import pytest

from digest.store.migrations import DIALECTS, HISTORY, SCHEMA_VERSION, Step, steps_for


def test_the_steps_are_numbered_in_order_and_every_dialect_reaches_the_latest() -> None:
    assert [step.number for step in HISTORY] == list(range(1, len(HISTORY) + 1))
    for dialect in DIALECTS:
        numbers = [number for number, _ in steps_for(dialect)]
        assert numbers == sorted(numbers) and numbers[-1] == SCHEMA_VERSION
        assert all(statements for _, statements in steps_for(dialect))


def test_postgresql_begins_at_step_4_and_shares_the_later_steps_with_sqlite() -> None:
    sqlite, postgresql = dict(steps_for("sqlite")), dict(steps_for("postgresql"))
    assert list(sqlite) == list(range(1, SCHEMA_VERSION + 1))
    assert list(postgresql) == list(range(4, SCHEMA_VERSION + 1))
    assert sqlite[4] != postgresql[4]  # a conversion of older files; a new database at once
    assert all(sqlite[n] == postgresql[n] for n in range(5, SCHEMA_VERSION + 1))


def test_a_step_runs_the_shared_sql_then_its_own() -> None:
    step = Step(10, both=("CREATE TABLE t (a TEXT)",), postgresql=("CREATE INDEX i ON t (a)",))
    assert step.statements("sqlite") == ("CREATE TABLE t (a TEXT)",)
    assert step.statements("postgresql") == ("CREATE TABLE t (a TEXT)", "CREATE INDEX i ON t (a)")
    assert Step(11, sqlite=("SELECT 1",), postgresql=None).statements("postgresql") is None
    with pytest.raises(ValueError, match="no schema history for the dialect 'oracle'"):
        steps_for("oracle")


def test_the_sqlite_steps_build_a_store_in_a_blank_database() -> None:
    conn = sqlite3.connect(":memory:")
    for _, statements in steps_for("sqlite"):
        for statement in statements:
            conn.execute(statement)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"papers", "digests", "subscribers", "verdicts", "paper_vectors"} <= tables
    assert "deliveries" not in tables  # step 4 converted and dropped the first ledger
