"""read_sources: API days, page URLs and globs against a real local server; failures isolated."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.commands import _source_entry
from digest.config import source_from
from digest.models import Batch
from digest.settings import SourceSettings
from digest.sources import Limits, ReadContext, read_sources
from digest.sources.fetch import get, make_client
from digest.sources.local import read_regular_file

from .conftest import LocalServer, Reply, fetch_section

SAMPLES = Path(__file__).parent.parent / "fixtures" / "samples"
TODAY = dt.date(2024, 8, 1)


def api_source(url: str, days: int) -> SourceSettings:
    return source_from({"kind": "hf-api", "url": url, "days": days})


def source_for(location: str) -> SourceSettings:
    """The source ``digest fetch --source LOCATION`` reads."""
    return source_from(_source_entry(location))


def api_body(*ids: str) -> bytes:
    return json.dumps(
        [{"paper": {"id": i, "title": f"Paper {i}", "upvotes": 1}} for i in ids]
    ).encode()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(timeout=0.5, connect_timeout=0.5) as client:
        yield client


def read(sources: list[SourceSettings], client: httpx.Client, **fetch: Any) -> Batch:
    settings = fetch_section(**{"retries": 2, "backoff": 0.01, **fetch})
    context = ReadContext(
        today=TODAY,
        download=partial(
            get, client, retries=settings.retries, backoff=settings.backoff, sleep=lambda _: None
        ),
        read_file=partial(read_regular_file, max_bytes=Limits().max_bytes),
        resolve=lambda path: SAMPLES / path,
    )
    return read_sources(sources, context, concurrency=settings.concurrency)  # type: ignore[arg-type]


def test_days_3_makes_three_dated_requests(server: LocalServer, client: httpx.Client) -> None:
    api = f"{server.url}/api/daily_papers"
    server.script.replies["/api/daily_papers?date=2024-08-01&limit=100&p=0"] = [
        Reply(body=api_body("2408.00001"))
    ]
    server.script.replies["/api/daily_papers?date=2024-07-31&limit=100&p=0"] = [
        Reply(body=api_body("2407.00002"))
    ]
    # the same paper on two days is one paper in the batch
    server.script.replies["/api/daily_papers?date=2024-07-30&limit=100&p=0"] = [
        Reply(body=api_body("2407.00002", "2407.00003"))
    ]
    batch = read([api_source(api, days=3)], client)
    assert sorted(server.paths()) == [
        "/api/daily_papers?date=2024-07-30&limit=100&p=0",
        "/api/daily_papers?date=2024-07-31&limit=100&p=0",
        "/api/daily_papers?date=2024-08-01&limit=100&p=0",
    ]
    assert batch.failures == ()
    assert batch.entries == 4
    assert [p.title for p in batch.papers] == [
        "Paper 2408.00001",
        "Paper 2407.00002",
        "Paper 2407.00003",
    ]
    assert batch.papers[1].sources == (
        f"{api}?date=2024-07-31",
        f"{api}?date=2024-07-30",
    )


def test_api_requests_respect_the_concurrency_bound(
    server: LocalServer, client: httpx.Client
) -> None:
    server.script.replies["*"] = [Reply(body=b"[]", delay=0.1)]
    batch = read([api_source(f"{server.url}/api", days=6)], client, concurrency=2)
    assert len(server.paths()) == 6
    assert server.script.max_in_flight == 2
    assert batch.failures == () and batch.papers == ()


def test_503_then_200_is_retried(server: LocalServer, client: httpx.Client) -> None:
    server.script.replies["/api?date=2024-08-01&limit=100&p=0"] = [
        Reply(503),
        Reply(body=api_body("2408.00001")),
    ]
    batch = read([api_source(f"{server.url}/api", days=1)], client)
    assert server.paths() == ["/api?date=2024-08-01&limit=100&p=0"] * 2
    assert [p.arxiv_id for p in batch.papers] == ["2408.00001"]
    assert batch.failures == ()


def test_404_fails_fast_and_the_other_sources_still_go_through(
    server: LocalServer, client: httpx.Client
) -> None:
    server.script.replies["/api?date=2024-08-01&limit=100&p=0"] = [Reply(404)]
    sources = [api_source(f"{server.url}/api", days=1), source_for("hf/page_2024-08-01.html")]
    batch = read(sources, client)
    assert server.paths() == ["/api?date=2024-08-01&limit=100&p=0"]
    (failure,) = batch.failures
    assert failure.source == f"{server.url}/api?date=2024-08-01"
    assert failure.message == "HTTP 404 Not Found"
    assert failure.hint
    assert len(batch.papers) == 13


def test_hanging_server_times_out(server: LocalServer, client: httpx.Client) -> None:
    server.script.replies["*"] = [Reply(hang=True)]
    batch = read([source_for(f"{server.url}/papers")], client, retries=0)
    (failure,) = batch.failures
    assert failure.source == f"{server.url}/papers"
    assert failure.message.startswith("timed out")
    assert batch.papers == ()


def test_page_url_is_sniffed(server: LocalServer, client: httpx.Client) -> None:
    page = (SAMPLES / "hf" / "page_2024-08-01.html").read_bytes()
    text = (SAMPLES / "text-pages" / "000_a074cbbb5062396c.txt").read_bytes()
    server.script.replies["/papers/date/2024-08-01"] = [Reply(body=page)]
    server.script.replies["/saved"] = [Reply(body=text)]
    sources = [
        source_for(f"{server.url}/papers/date/2024-08-01"),
        source_for(f"{server.url}/saved"),
    ]
    batch = read(sources, client)
    assert batch.failures == ()
    assert batch.entries == len(batch.papers) == 13 + 5
    assert batch.papers[-1].sources == (f"{server.url}/saved",)


def test_page_url_with_bad_content_is_a_failure(server: LocalServer, client: httpx.Client) -> None:
    server.script.replies["*"] = [Reply(body=b"")]
    batch = read([source_for(f"{server.url}/empty")], client)
    (failure,) = batch.failures
    assert (failure.source, failure.message) == (f"{server.url}/empty", "the file is empty")


def test_text_page_glob_counts_entries_before_dedupe(client: httpx.Client) -> None:
    batch = read([source_for("text-pages/*.txt")], client)
    assert batch.failures == ()
    assert (batch.entries, len(batch.papers)) == (184, 178)


def test_each_bad_file_of_a_glob_fails_alone(client: httpx.Client, tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "hf" / "bad_2024-12-11_repr_strings.json", tmp_path / "a.json")
    shutil.copy(SAMPLES / "hf" / "api_2024-03-21.json", tmp_path / "b.json")
    (tmp_path / "c.json").write_bytes(b"")
    pattern = str(tmp_path / "*.json")
    batch = read([source_for(pattern)], client)
    assert batch.entries == len(batch.papers) == 18
    assert [(f.source, f.message) for f in batch.failures] == [
        (
            str(tmp_path / "a.json"),
            "entry [0]: expected an object, got a JSON string (it looks like a Python repr string)",
        ),
        (str(tmp_path / "c.json"), "the file is empty"),
    ]
    assert all(f.hint for f in batch.failures)


def test_missing_file_and_empty_glob_are_failures_with_hints(client: httpx.Client) -> None:
    batch = read([source_for("nowhere/*.txt"), source_for("missing.txt")], client)
    assert [(f.source, f.message) for f in batch.failures] == [
        ("nowhere/*.txt", "the pattern matches no file"),
        (str(SAMPLES / "missing.txt"), "no such file"),
    ]
    assert all(f.hint and "[[sources]]" in f.hint for f in batch.failures)
    assert batch.papers == () and batch.entries == 0


def test_source_for() -> None:
    remote = source_for("https://huggingface.co/papers")
    assert getattr(remote, "url", None) == "https://huggingface.co/papers"
    assert source_for("http://localhost/x").kind == "page"
    local = source_for("pages/*.txt")
    assert (local.kind, getattr(local, "path", None), getattr(local, "url", 0)) == (
        "page",
        "pages/*.txt",
        None,
    )
