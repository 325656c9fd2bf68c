"""A throwaway PostgreSQL cluster for the tests: Debian's ``initdb``/``pg_ctl`` (package
``postgresql``) on a private socket directory and port, one fresh database per test.

As root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root), in a
directory that user owns. Skips with the reason when no server binary is installed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest

from tests.smtp_server import free_port


def server_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: pg_config's, else Debian's newest."""
    config = shutil.which("pg_config")
    if config:
        found = subprocess.run([config, "--bindir"], capture_output=True, text=True, check=False)
        folder = Path(found.stdout.strip())
        if (folder / "initdb").exists():
            return folder
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


@dataclass
class Cluster:
    """A running server: where its socket is, and fresh databases on demand."""

    folder: Path
    port: int
    _numbers: Iterator[int]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://digest@/{database}?host={self.folder}&port={self.port}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (one :meth:`new_database` made), whoever is still on
        it: a test's store left open must not keep its database for the rest of the session."""
        import psycopg

        name = url.split("/")[-1].split("?")[0]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def running_cluster(*, durable: bool = False) -> Iterator[Cluster]:
    """Start a cluster for the session; stop it and delete its files after. The tests run it
    with ``fsync=off``; ``durable`` keeps PostgreSQL's default (a benchmark against SQLite,
    which syncs, must compare like with like)."""
    folder_bin = server_bin()
    if folder_bin is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install -y postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="digest-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = free_port()
    data = folder / "data"
    subprocess.run(
        _as_server_user(
            [str(folder_bin / "initdb"), "-D", str(data), "-U", "digest", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"]
        ),
        check=True, capture_output=True, cwd="/tmp",
    )  # fmt: skip
    fsync = "" if durable else " -c fsync=off"
    options = f"-k {folder} -p {port} -c listen_addresses=''{fsync} -c max_connections=200"
    subprocess.run(
        _as_server_user(
            [str(folder_bin / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o",
             options, "-w", "start"]
        ),
        check=True, capture_output=True, cwd="/tmp",
    )  # fmt: skip
    try:
        yield Cluster(folder, port, count(1))
    finally:
        subprocess.run(
            _as_server_user([str(folder_bin / "pg_ctl"), "-D", str(data), "-m", "immediate",
                             "stop"]),
            check=False, capture_output=True, cwd="/tmp",
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
