"""Hugging Face page HTML: a Daily Papers page (its ``data-props`` JSON, else the cards), or
one paper's page.

The server renders ``<div ... data-target="DailyPapers" data-props="{...}">`` whose (HTML-escaped)
JSON carries ``dailyPapers``, a list of API-shaped entries, and the page date under ``date`` (or
``dateString`` in newer pages). When that JSON is missing or unreadable the visible cards
(``article`` -> ``h3 > a[href="/papers/<id>"]``, upvotes in ``div.leading-none``) still give ids,
titles, upvotes and author counts, but no abstracts. Elements are found by attribute, never by
attribute order or position, so re-ordered or re-nested markup still reads.

A single paper's page (``huggingface.co/papers/<id>``) embeds that paper the same way, as a
``paper`` object in the ``data-props`` of its content widget (``data-target="PaperContent"``): it
reads as one paper, which is also how a liked paper can be looked up from its page.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from bs4 import BeautifulSoup, Tag

from digest.errors import ParseError
from digest.models import Paper
from digest.sources import Skip
from digest.sources.hf_api import iso_date, paper_url, papers_from_entries
from digest.sources.limits import DEFAULT_LIMITS, Limits, check_depth, check_entries

_PAPER_HREF = re.compile(r"^(?:https://huggingface\.co)?/papers/(?P<id>[^/?#]+)/?$")
_AUTHORS = re.compile(r"(\d[\d,]*)\s+authors?\b")
_INT = re.compile(r"^\d[\d,]*$")
_CLOSING_HTML = re.compile(r"</html\s*>", re.IGNORECASE)
PAGE_HINT = (
    "expected a Hugging Face Daily Papers page (https://huggingface.co/papers or "
    "/papers/date/YYYY-MM-DD) saved as complete HTML"
)


def parse_page_html(
    html: str, *, origin: str, limits: Limits = DEFAULT_LIMITS, on_skip: Skip | None = None
) -> list[Paper]:
    """Papers on a Daily Papers page; ParseError when the page is truncated or not one."""
    soup = BeautifulSoup(html, "html.parser")
    widget = soup.find("div", attrs={"data-target": "DailyPapers"})
    props = _props(widget, limits, origin) if isinstance(widget, Tag) else None
    if props is not None:
        return papers_from_entries(
            props["dailyPapers"],
            origin=origin,
            page_date=_page_date(props),
            limits=limits,
            on_skip=on_skip,
        )
    single = _single_paper(soup, limits, origin)
    if single is not None:
        return papers_from_entries([single], origin=origin, limits=limits)
    # Without the JSON the cards are all there is; a cut-off page would silently lose some.
    if not _CLOSING_HTML.search(html[-4096:]):
        raise ParseError(
            "the HTML ends before </html>: the page is truncated",
            where=origin,
            hint="download or save the page again, completely",
        )
    papers = _cards(soup, origin)
    check_entries(papers, limits, origin)
    if not papers:
        raise ParseError("no Daily Papers found in this HTML page", where=origin, hint=PAGE_HINT)
    return papers


def _props(widget: Tag, limits: Limits, origin: str) -> dict[str, Any] | None:
    raw = widget.get("data-props")
    if not isinstance(raw, str):
        return None
    try:
        props = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # broken JSON (or a number too long to read): the cards are still there
    check_depth(props, limits, origin)
    if isinstance(props, dict) and isinstance(props.get("dailyPapers"), list):
        return props
    return None


def _single_paper(soup: BeautifulSoup, limits: Limits, origin: str) -> dict[str, Any] | None:
    """The entry of a one-paper page: the first widget whose props hold a ``paper`` with an id."""
    for widget in soup.find_all(attrs={"data-props": True}):
        if not isinstance(widget, Tag) or "paper" not in str(widget.get("data-props", ""))[:200]:
            continue
        try:
            props = json.loads(str(widget["data-props"]))
        except (ValueError, RecursionError):
            continue
        check_depth(props, limits, origin)
        paper = props.get("paper") if isinstance(props, dict) else None
        if isinstance(paper, dict) and isinstance(paper.get("id"), str):
            return {"paper": paper}
    return None


def _page_date(props: Mapping[str, Any]) -> dt.date | None:
    return iso_date(props.get("date")) or iso_date(props.get("dateString"))


def _cards(soup: BeautifulSoup, origin: str) -> list[Paper]:
    papers: list[Paper] = []
    for article in soup.find_all("article"):
        if not isinstance(article, Tag):
            continue
        paper = _card(article, origin)
        if paper is not None:
            papers.append(paper)
    return papers


def _card(article: Tag, origin: str) -> Paper | None:
    for heading in article.find_all("h3"):
        if not isinstance(heading, Tag):
            continue
        for link in heading.find_all("a", href=True):
            if not isinstance(link, Tag):
                continue
            match = _PAPER_HREF.match(str(link["href"]))
            title = link.get_text(" ", strip=True)
            if match and title:
                paper_id = match.group("id")
                return Paper(
                    arxiv_id=paper_id,
                    title=title,
                    upvotes=_upvotes(article),
                    author_count=_author_count(article),
                    url=paper_url(paper_id),
                    sources=(origin,),
                )
    return None


def _upvotes(article: Tag) -> int | None:
    for div in article.find_all("div", class_="leading-none"):
        text = div.get_text(strip=True)
        if _INT.match(text):
            return int(text.replace(",", ""))
    return None


def _author_count(article: Tag) -> int | None:
    match = _AUTHORS.search(article.get_text(" ", strip=True))
    return int(match.group(1).replace(",", "")) if match else None
