"""The run lock: one run at a time, taken over from a dead run, and no way to aim it at
another file (symlinks, hard links, two names for one store)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digest.errors import LockedError, StoreError
from digest.store.lock import lock_path_for
from digest.store.sqlite import SqliteStore

LOCKER = """
import sys, time
from pathlib import Path
from digest.errors import LockedError
from digest.store.sqlite import SqliteStore
path, go, release = (Path(a) for a in sys.argv[1:4])
while not go.exists():
    time.sleep(0.005)
with SqliteStore.open(path) as store:
    try:
        with store.run_lock():
            print("acquired", flush=True)
            deadline = time.monotonic() + 20
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
    except LockedError as exc:
        print(f"locked|{exc.message}|{exc.hint}", flush=True)
"""


def start_locker(tmp_path: Path, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path), str(tmp_path / "go"), str(tmp_path / "release")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_started_together_exactly_one_gets_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"  # created by both at once, too
    procs = [start_locker(tmp_path, path) for _ in range(2)]
    try:
        (tmp_path / "go").touch()
        # The loser reports at once; only then may the winner let go.
        deadline = time.monotonic() + 20
        while sum(p.poll() is not None for p in procs) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / "release").touch()
        results = [p.communicate(timeout=20) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outputs = [out.strip() for out, _ in results]
    assert sorted(o.split("|")[0] for o in outputs) == ["acquired", "locked"], results
    winner = procs[[o.split("|")[0] for o in outputs].index("acquired")]
    loser = next(o for o in outputs if o.startswith("locked"))
    assert f"another digest run is in progress (pid {winner.pid} since " in loser


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    (tmp_path / "go").touch()
    proc = start_locker(tmp_path, path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "acquired"
        with SqliteStore.open(path) as store:
            with (
                pytest.raises(LockedError, match=f"pid {proc.pid} since") as caught,
                store.run_lock(),
            ):
                pass
            assert caught.value.where == str(path) and caught.value.exit_code == 1
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            with store.run_lock():
                assert store.stale_lock is not None and f"pid {proc.pid}" in store.stale_lock
            # Released cleanly this time: the next holder finds nothing stale.
            with store.run_lock():
                assert store.stale_lock is None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_a_symlink_planted_as_the_lock_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "digest.db"
    (tmp_path / "digest.db.lock").symlink_to(victim)
    with (
        SqliteStore.open(path) as store,
        pytest.raises(StoreError, match="symbolic link") as caught,
        store.run_lock(),
    ):
        pass
    assert caught.value.where == str(path) and "remove" in (caught.value.hint or "")
    assert victim.read_text() == "precious\n"


def test_a_hard_link_planted_as_the_lock_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.link(victim, tmp_path / "digest.db.lock")
    with (
        SqliteStore.open(tmp_path / "digest.db") as store,
        pytest.raises(StoreError, match="hard links"),
        store.run_lock(),
    ):
        pass
    assert victim.read_text() == "precious\n"


def test_the_lock_is_never_truncated(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    lock = tmp_path / "digest.db.lock"
    lock.write_bytes(b"x" * 1000)
    with SqliteStore.open(path) as store, store.run_lock():
        assert lock.stat().st_size == 1000  # its record is written over, the file never cut
    assert lock.stat().st_size == 1000


def test_two_names_for_one_store_share_one_lock(tmp_path: Path) -> None:
    real = tmp_path / "data" / "digest.db"
    real.parent.mkdir()
    alias = tmp_path / "elsewhere.db"
    SqliteStore.open(real).close()
    alias.symlink_to(real)
    assert lock_path_for(alias) == lock_path_for(real) == real.with_name("digest.db.lock")
    with (
        SqliteStore.open(real) as first,
        SqliteStore.open(alias) as second,
        first.run_lock(),
        pytest.raises(LockedError),
        second.run_lock(),
    ):
        pass


def test_two_runs_through_two_names_of_one_store_send_once(tmp_path: Path) -> None:
    import shutil

    pages = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "text-pages"
    shutil.copytree(pages, tmp_path / "pages")
    (tmp_path / "state").mkdir()
    (tmp_path / "alias.db").symlink_to(tmp_path / "state" / "digest.db")
    configs = []
    for name, store in (("a", "state/digest.db"), ("b", "alias.db")):
        config = tmp_path / f"{name}.toml"
        config.write_text(
            f'[digest]\nstore = "{store}"\n[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
            '[delivery]\nmethod = "file"\noutbox = "outbox"\n'
            '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["attention head"]\n'
        )
        configs.append(config)
    SqliteStore.open(tmp_path / "state" / "digest.db").close()
    with SqliteStore.open(tmp_path / "state" / "digest.db") as holder, holder.run_lock():
        # while one run holds the lock, the other name finds it taken
        result = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(configs[1]), "run"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1 and "another digest run is in progress" in result.stderr
    for config in configs:
        subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), "run"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_the_lock_file_removed_mid_run_never_lets_a_second_run_send(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys
    import threading
    import time
    from collections import Counter

    from tests.smtp_server import Handler, smtp_server

    pages = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "text-pages"
    shutil.copytree(pages, tmp_path / "pages")
    accepted = threading.Event()

    def slowly(number: int) -> None:
        accepted.set()
        time.sleep(0.3)  # a run that takes a few seconds to send everything

    handler = Handler(after_accept=slowly)
    with smtp_server(handler) as server:
        config = tmp_path / "digest.toml"
        text = (
            '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
            '[delivery]\nmethod = "smtp"\nfrom = "D <d@example.org>"\n'
            f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
        )
        text += "".join(f'[[subscribers]]\nemail = "r{n}@example.org"\n' for n in range(12))
        config.write_text(text)
        env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
        argv = [sys.executable, "-m", "digest", "--config", str(config), "run"]
        first = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert accepted.wait(60), "the first run never sent"
        (tmp_path / "digest.db.lock").unlink()  # somebody cleans up "stale" files
        second = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 1 and "another digest run is in progress" in second.stderr
    counts = Counter(r.rcpt_tos[0] for r in handler.received)
    assert sorted(counts) == sorted(f"r{n}@example.org" for n in range(12))
    assert set(counts.values()) == {1}  # nobody twice
