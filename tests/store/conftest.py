"""What the store tests share: the real inputs they read, and a digest planned, sent or failed
as a run would (typed by the :class:`~digest.store.Store` interface, so every backend's tests
use the same helpers)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from digest.models import Paper
from digest.sources.hf_api import parse_api
from digest.sources.text_page import parse_text_page
from digest.store import Accepted, OpenDigest, PlannedDigest, Refused, Store

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


EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def owed(store: Store, email: str) -> list[Paper]:
    return store.owed_papers([email])[email]


def delivered(store: Store, email: str, since: dt.datetime = EPOCH) -> set[str]:
    """What ``email`` must not be offered again among papers first seen since ``since``."""
    return set(store.delivered_keys([email], since)[email])


def plan(
    store: Store, run: int, email: str, keys: list[str], now: dt.datetime, over: list[str]
) -> OpenDigest:
    (digest,) = store.plan_digests(
        run, now.date(), [PlannedDigest(email, tuple(keys), tuple(over))], now
    )
    return digest


def send(
    store: Store,
    run: int,
    email: str,
    keys: list[str],
    now: dt.datetime,
    *,
    passed_over: list[str] | None = None,
) -> OpenDigest:
    """Plan one digest, record the channel's acceptance and end the run, as a run would (a
    shared store adds to the papers' sent counts by the end of the run)."""
    digest = plan(store, run, email, keys, now, passed_over or [])
    store.mark_sent(run, [Accepted(digest.row, email, "<m@example.org>", tuple(keys))], now)
    store.finish_run(run, now, "sent 1")
    return digest


def fail(store: Store, run: int, email: str, keys: list[str], now: dt.datetime) -> OpenDigest:
    digest = plan(store, run, email, keys, now, [])
    store.mark_failed(run, [Refused(digest.row, email, "SMTP 451 try later")], now)
    return digest


def side_files(path: Path) -> dict[str, int]:
    """The store file's siblings (``-wal``, ``-shm``, ...) and their sizes."""
    return {p.name: p.stat().st_size for p in path.parent.iterdir() if p.name != path.name}
