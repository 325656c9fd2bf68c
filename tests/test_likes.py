"""Liked papers: found at hand or in the store, else fetched once from a (local) Hugging Face
paper API and kept; offline, left out with a warning, never an error."""

from __future__ import annotations

import datetime as dt
import json
import logging
from functools import partial
from pathlib import Path

import httpx
import pytest

from digest.likes import fetch_liked, liked_papers
from digest.models import Subscriber
from digest.sources.fetch import get
from digest.store.sqlite import SqliteStore
from tests.conftest import LocalServer, Reply

SAMPLE = Path(__file__).parent / "fixtures" / "samples" / "hf" / "api_2025-10-06.json"
NOW = dt.datetime(2026, 8, 1, 7, tzinfo=dt.UTC)
ADA = Subscriber(email="ada@example.org", like=("2510.01459v2", "2510.03204"))


def paper_answer(arxiv_id: str) -> bytes:
    """The paper object of a real API entry: what /api/papers/<id> answers."""
    entries = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return json.dumps(next(e["paper"] for e in entries if e["paper"]["id"] == arxiv_id)).encode()


def test_liked_papers_are_fetched_once_then_kept(tmp_path: Path, server: LocalServer) -> None:
    for arxiv_id in ("2510.01459", "2510.03204"):
        server.script.replies[f"/api/papers/{arxiv_id}"] = [Reply(200, paper_answer(arxiv_id))]
    base = f"{server.url}/api/papers"
    with httpx.Client() as client, SqliteStore.open(tmp_path / "digest.db") as store:
        download = partial(get, client, retries=0, backoff=0)
        fetched = fetch_liked([ADA], [], store, download=download, base_url=base, now=NOW)
        assert sorted(fetched) == ["2510.01459", "2510.03204"]
        assert fetched["2510.01459"].title.startswith("LSPO")
        assert len(server.paths()) == 2
        again = fetch_liked([ADA], [], store, download=download, base_url=base, now=NOW)
        assert again == {} and len(server.paths()) == 2  # kept: not asked again
        assert set(liked_papers([ADA], [], store)) == {"2510.01459", "2510.03204"}


def test_an_unreachable_api_leaves_the_like_out_with_a_warning(
    tmp_path: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.replies["*"] = [Reply(404)]
    with httpx.Client() as client, SqliteStore.open(tmp_path / "digest.db") as store:
        download = partial(get, client, retries=0, backoff=0)
        with caplog.at_level(logging.WARNING, logger="digest.likes"):
            fetched = fetch_liked([ADA], [], store, download=download, base_url=server.url, now=NOW)
        assert fetched == {}
        assert "liked paper 2510.01459 not fetched" in caplog.text
        assert liked_papers([ADA], [], store) == {}


def test_a_read_only_store_uses_what_it_fetched_but_keeps_nothing(
    tmp_path: Path, server: LocalServer
) -> None:
    server.script.replies["/api/papers/2510.01459"] = [Reply(200, paper_answer("2510.01459"))]
    server.script.replies["*"] = [Reply(404)]
    only = Subscriber(email="ada@example.org", like=("2510.01459",))
    path = tmp_path / "digest.db"
    SqliteStore.open(path).close()
    with httpx.Client() as client, SqliteStore.open(path, readonly=True) as store:
        download = partial(get, client, retries=0, backoff=0)
        base = f"{server.url}/api/papers"
        fetched = fetch_liked([only], [], store, download=download, base_url=base, now=NOW)
        assert set(liked_papers([only], [], store, fetched)) == {"2510.01459"}
    with SqliteStore.open(path) as store:
        assert liked_papers([only], [], store) == {}


def test_a_run_compares_with_a_liked_paper_no_source_brought(
    tmp_path: Path, server: LocalServer
) -> None:
    import shutil
    import subprocess
    import sys

    server.script.replies["/api/papers/2510.00515"] = [Reply(200, paper_answer("2510.00515"))]
    day = SAMPLE.parent / "api_2026-07-31_limit30.json"  # EPIC is not in it
    shutil.copy(day, tmp_path / "day.json")
    (tmp_path / "digest.toml").write_text(
        f'[fetch]\npaper_api = "{server.url}/api/papers"\nretries = 0\n'
        '[[sources]]\nkind = "page"\npath = "day.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nlike = ["2510.00515"]\n',
        encoding="utf-8",
    )
    run = [sys.executable, "-m", "digest", "run", "--date", "2026-07-31"]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    mails = list((tmp_path / "outbox").glob("*.eml"))
    assert len(mails) == 1
    text = mails[0].read_text(encoding="utf-8")
    # EPIC compresses visual tokens; so does OmniScope, of that day
    assert "OmniScope" in text and "liked paper 2510.00515" in text
    again = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert server.paths() == ["/api/papers/2510.00515"]  # kept in the store: fetched once


def test_a_liked_paper_can_be_looked_up_from_its_page(tmp_path: Path, server: LocalServer) -> None:
    from tests.sources.test_hf_page import paper_page

    entries = json.loads(SAMPLE.read_text(encoding="utf-8"))
    raw = next(e["paper"] for e in entries if e["paper"]["id"] == "2510.01459")
    server.script.replies["/papers/2510.01459"] = [Reply(200, paper_page(raw).encode())]
    server.script.replies["*"] = [Reply(404)]
    only = Subscriber(email="ada@example.org", like=("2510.01459",))
    with httpx.Client() as client, SqliteStore.open(tmp_path / "digest.db") as store:
        download = partial(get, client, retries=0, backoff=0)
        base = f"{server.url}/papers"
        fetched = fetch_liked([only], [], store, download=download, base_url=base, now=NOW)
    assert fetched["2510.01459"].title.startswith("LSPO")
