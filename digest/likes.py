"""The papers subscribers ``like``: found among the papers at hand, in the store, or fetched once
from the Hugging Face paper API (``GET /api/papers/<id>``) and kept in the store.

A liked paper that cannot be found (offline, a mistyped id) is only left out of the comparison:
it is logged, ``digest check`` lists it, and the next run online tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from digest.errors import DigestError
from digest.identity import arxiv_id
from digest.models import Paper, Subscriber
from digest.store import PaperExtras, PaperHistory

log = logging.getLogger(__name__)


class LikedPaperStore(PaperHistory, PaperExtras, Protocol):
    """Where liked papers are looked up (the papers seen) and kept (those fetched for likes)."""


def liked_ids(subscribers: Iterable[Subscriber]) -> set[str]:
    """Every arXiv id (without version) the subscribers like."""
    return {arxiv_id(raw) or raw.strip() for s in subscribers for raw in s.like}


def liked_papers(
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    store: LikedPaperStore,
    fetched: Mapping[str, Paper] | None = None,
) -> dict[str, Paper]:
    """The liked papers by arXiv id: among ``papers`` and ``fetched``, else the store's records,
    else those the store keeps for likes; the ones found nowhere are left out."""
    wanted = liked_ids(subscribers)
    if not wanted:
        return {}
    found = {p.arxiv_id: p for p in papers if p.arxiv_id in wanted}
    found.update((k, p) for k, p in (fetched or {}).items() if k in wanted)
    missing = wanted - found.keys()
    if missing:
        found.update((p.arxiv_id, p) for p in store.papers_by_key(missing).values() if p.arxiv_id)
        missing -= found.keys()
    if missing:
        found.update(store.liked_papers(missing))
    return {key: paper for key, paper in found.items() if key}


def fetch_liked(
    subscribers: Sequence[Subscriber],
    papers: Sequence[Paper],
    store: LikedPaperStore,
    *,
    download: Callable[[str], bytes],
    base_url: str,
    now: dt.datetime,
) -> dict[str, Paper]:
    """Fetch the liked papers known nowhere yet and keep them in the store (unless it is
    read-only, as a preview's is); the papers fetched, by arXiv id."""
    missing = sorted(liked_ids(subscribers) - liked_papers(subscribers, papers, store).keys())
    fetched: list[Paper] = []
    for wanted in missing:
        url = f"{base_url.rstrip('/')}/{wanted}"
        try:
            fetched.append(_paper_answered(download(url), origin=url))
        except DigestError as exc:
            log.warning("liked paper %s not fetched (%s): left out until it is", wanted, exc)
    if fetched:
        store.save_liked_papers(fetched, now)
    return {p.arxiv_id: p for p in fetched if p.arxiv_id}


def _paper_answered(data: bytes, *, origin: str) -> Paper:
    """The paper in the answer for one id: the paper API's JSON, or the paper's page
    (``[fetch] paper_api = "https://huggingface.co/papers"`` reads the pages instead)."""
    if data.lstrip()[:1] == b"<":
        from digest.sources.hf_page import parse_page_html  # BeautifulSoup only when needed

        return parse_page_html(data.decode("utf-8", "replace"), origin=origin)[0]
    from digest.sources.hf_api import paper_from_api

    return paper_from_api(data, origin=origin)
