"""``kind = "feed"``: RSS 2.0 and Atom feeds of Daily Papers, as community mirrors publish them.

Hugging Face has no official feed; mirrors publish items such as ``<item><title>...</title>
<link>https://huggingface.co/papers/2601.01234</link><description><![CDATA[<div
class="paper-content">authors, arXiv links, the AI summary, sometimes a translation</div>]]>
</description><pubDate>...</pubDate></item>``. Each item becomes a paper: the arXiv id from its
Hugging Face or arXiv link (else it is known by its title, like a saved text page), the summary's
HTML reduced to text and sorted into abstract, AI summary, authors, upvotes and organisation by
the rules of the mirror's shape (:mod:`digest.sources.feed_shapes`); without names there, the
item's own ``<author>`` elements.

A feed is XML from a stranger: one that declares entities or external references is refused
before any parser sees it (``defusedxml``), which stops entity-expansion attacks; feedparser
then reads it with its HTML sanitiser on.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from digest.errors import ParseError
from digest.identity import arxiv_id
from digest.models import Paper
from digest.sources import ReadContext, Skip
from digest.sources.feed_shapes import describe
from digest.sources.hf_api import paper_url
from digest.sources.limits import DEFAULT_LIMITS, Limits, check_entries
from digest.sources.located import LocatedKind
from digest.untrusted import clean_text, safe_url

FEED_HINT = "expected an RSS 2.0 or Atom feed of Daily Papers (one item per paper)"
_PAPER_LINK = re.compile(
    r"https?://(?:www\.)?(?:huggingface\.co/papers|arxiv\.org/(?:abs|pdf|html))/"
    r"(?P<id>\d{4}\.\d{4,5}(?:v\d+)?)",
    re.IGNORECASE,
)


class FeedSource(LocatedKind):
    """``kind = "feed"`` with ``url`` or ``path`` (a file or glob of saved feeds)."""

    kind: Literal["feed"]

    def parse(
        self, data: bytes, *, origin: str, context: ReadContext, skip: Skip, path: Path | None
    ) -> list[Paper]:
        """The feed's items, by the rules of its mirror's shape."""
        return parse_feed(data, origin=origin, limits=context.limits, on_skip=skip)


def parse_feed(
    data: bytes, *, origin: str, limits: Limits = DEFAULT_LIMITS, on_skip: Skip | None = None
) -> list[Paper]:
    """The papers of an RSS or Atom feed; ParseError when it is not a feed or is hostile."""
    import feedparser  # only feed sources need it

    data = _valid_references(data)
    _refuse_entities(data, origin)
    try:
        feed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    except (ValueError, LookupError, UnicodeError, RecursionError) as exc:
        raise ParseError(f"the feed cannot be read: {exc}", where=origin, hint=FEED_HINT) from exc
    if not feed.get("version") and not feed.entries:
        problem = feed.get("bozo_exception")
        detail = f": {problem}" if problem else ""
        raise ParseError(f"not an RSS or Atom feed{detail}", where=origin, hint=FEED_HINT)
    check_entries(list(feed.entries), limits, origin)
    papers: list[Paper] = []
    for index, entry in enumerate(feed.entries):
        try:
            papers.append(_paper(entry, f"{origin}: item [{index}]", origin))
        except ParseError as exc:
            if on_skip is None:
                raise
            on_skip(exc)
    if feed.entries and not papers:
        raise ParseError("no item of the feed is a paper", where=origin, hint=FEED_HINT)
    return papers


_CHAR_REF = re.compile(rb"&(amp;)?#(x[0-9a-fA-F]{1,8}|[0-9]{1,10});")


def _valid_references(data: bytes) -> bytes:
    """``data`` with character references to no character (a surrogate, past U+10FFFF), at
    either level of escaping, made U+FFFD: parsers fail on them, and one must not cost a feed."""

    def fix(found: re.Match[bytes]) -> bytes:
        raw = found.group(2)
        value = int(raw[1:], 16) if raw[:1] in (b"x", b"X") else int(raw)
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            return b"&" + (found.group(1) or b"") + b"#xFFFD;"
        return found.group(0)

    return _CHAR_REF.sub(fix, data) if b"&" in data else data


def _refuse_entities(data: bytes, origin: str) -> None:
    import xml.etree.ElementTree as ElementTree

    import defusedxml
    import defusedxml.ElementTree

    try:
        defusedxml.ElementTree.fromstring(data, forbid_dtd=False)
    except defusedxml.DefusedXmlException as exc:
        raise ParseError(
            f"the feed declares XML entities or external references ({type(exc).__name__})",
            where=origin,
            hint="paper-digest refuses those (they can expand into gigabytes); "
            "ask the feed's publisher for a plain feed",
        ) from exc
    except ElementTree.ParseError:
        pass  # not well-formed: feedparser's tolerant parser decides, and expands no entities
    except LookupError as exc:
        raise ParseError(
            f"the feed is in an encoding no decoder knows ({exc})",
            where=origin,
            hint="ask the feed's publisher for UTF-8, or save it as UTF-8",
        ) from exc


def _paper(entry: Any, where: str, origin: str) -> Paper:
    title = _html_text(str(entry.get("title", "")))
    if not title:
        raise ParseError("has no title", where=where, hint=FEED_HINT)
    summary_html = str(entry.get("summary", "") or _content(entry))
    described = describe(summary_html, title=title)
    links = [str(entry.get("link", "")), str(entry.get("id", ""))]
    links += [str(link.get("href", "")) for link in entry.get("links", [])]
    paper_id = _arxiv_id([*links, *_hrefs(summary_html)])
    fallback = next((url for url in map(safe_url, links) if url), None)
    try:
        return Paper(
            arxiv_id=paper_id,
            title=title,
            abstract=described.abstract,
            authors=described.authors or _entry_authors(entry),
            organization=described.organization,
            upvotes=described.upvotes,
            ai_summary=described.ai_summary,
            published=_date(entry),
            url=paper_url(paper_id) if paper_id else fallback,
            sources=(origin,),
        )
    except ValidationError as exc:
        raise ParseError(f"{exc.errors()[0]['msg']}", where=where, hint=FEED_HINT) from exc


def _entry_authors(entry: Any) -> tuple[str, ...]:
    """The item's ``<author>`` / ``<dc:creator>`` (RSS) or ``<author><name>`` (Atom) names."""
    names: list[str] = []
    for author in entry.get("authors") or []:
        name = author.get("name") if hasattr(author, "get") else None
        if isinstance(name, str):
            names.extend(part for part in (clean_text(n) for n in name.split(",")) if part)
    if not names and isinstance(entry.get("author"), str):
        # RSS 2.0 asks for "address (Name)"; feedparser keeps that whole when it cannot split it
        bare = re.sub(r"^\S+@\S+\s*\((.*)\)$", r"\1", entry["author"].strip())
        names = [part for part in (clean_text(n) for n in bare.split(",")) if part]
    return tuple(names)


def _content(entry: Any) -> str:
    content = entry.get("content") or []
    return str(content[0].get("value", "")) if content else ""


def _arxiv_id(links: list[str]) -> str | None:
    for link in links:
        found = _PAPER_LINK.search(link)
        if found:
            return arxiv_id(found.group("id"))
    return None


def _hrefs(html: str) -> list[str]:
    return re.findall(r"""href\s*=\s*["']([^"']+)["']""", html)


def _html_text(html: str) -> str:
    if "<" not in html and "&" not in html:
        return clean_text(html)
    from bs4 import BeautifulSoup

    return clean_text(BeautifulSoup(html, "html.parser").get_text(" "))


def _date(entry: Any) -> dt.date | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        return dt.date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
    except (ValueError, AttributeError):
        return None
