"""A store that is there but emptied or damaged is refused, never taken for a new one nor
written to: a run would otherwise send every paper again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "text-pages"


def digest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIGEST_CONFIG", "DIGEST_STORE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(folder / "digest.toml"), *args],
        capture_output=True, text=True, timeout=120, cwd=folder, env=env,
    )  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(PAGES, tmp_path / "pages")
    (tmp_path / "digest.toml").write_text(
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "D <d@example.org>"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["reasoning"]\n'
    )
    done = digest(tmp_path, "run", "--date", "2026-11-02")
    assert done.returncode == 0, done.stderr
    (tmp_path / "digest.db-wal").unlink(missing_ok=True)  # folded: the file holds it all
    return tmp_path


def outbox(folder: Path) -> list[Path]:
    return sorted((folder / "outbox").glob("*.eml"))


def refused(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 2, done.stdout
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("digest: error:")]
    assert words in line and "digest.db" in line and "Traceback" not in done.stderr


def test_a_store_truncated_to_nothing_is_refused_not_started_afresh(folder: Path) -> None:
    sent = outbox(folder)
    (folder / "digest.db").write_bytes(b"")
    for command in (["run", "--date", "2026-11-03"], ["preview"], ["seen", "stats"]):
        refused(digest(folder, *command), "the store file is empty")
    assert (folder / "digest.db").stat().st_size == 0 and outbox(folder) == sent
    again = digest(folder, "store", "init")
    assert again.returncode == 2 and "already there" in again.stderr
    (folder / "digest.db").rename(folder / "digest.db.broken")
    made = digest(folder, "store", "init")
    assert made.returncode == 0 and "made the store" in made.stdout


def test_a_store_damaged_in_the_middle_is_refused_and_left_as_it_is(folder: Path) -> None:
    path = folder / "digest.db"
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) >= 4 * page
    data[2 * page : 3 * page] = b"\xff" * page  # a page in the middle overwritten
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    refused(digest(folder, "run", "--date", "2026-11-03"), "the store is damaged")
    assert path.read_bytes() == before and len(outbox(folder)) == 1


def test_a_store_cut_short_in_its_last_page_is_refused(folder: Path) -> None:
    path = folder / "digest.db"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096 // 2])
    before = path.read_bytes()
    refused(digest(folder, "run", "--date", "2026-11-03"), "damaged")
    assert path.read_bytes() == before
