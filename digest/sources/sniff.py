"""Format sniffing: which Daily Papers format some bytes are in (API JSON, page HTML, saved text,
or an RSS / Atom feed of a community mirror).

The decision looks at the content only, never at a file name or a Content-Type header, because
saved pages end up with any extension and servers mislabel. Anything unrecognisable is a
``ParseError`` naming the origin, what is wrong and what was expected: never an empty list.
"""

from __future__ import annotations

import datetime as dt
import re

from digest.errors import ParseError
from digest.models import Paper
from digest.sources import Skip
from digest.sources.hf_api import parse_api
from digest.sources.limits import DEFAULT_LIMITS, Limits
from digest.sources.text_page import MARKERS, TEXT_HINT, parse_text_page

_HTML_START = re.compile(r"^(?:<!doctype\s+html|<html|<head|<body|<div|<meta|<!--)", re.IGNORECASE)
_FEED_START = re.compile(
    r"^(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:rss|feed|rdf:RDF)\b", re.IGNORECASE | re.S
)
_ANY_HINT = "give a Daily Papers API response (JSON), a page saved as HTML, or a page saved as text"


def parse_document(
    data: bytes,
    *,
    origin: str,
    today: dt.date,
    saved: dt.date | None = None,
    limits: Limits = DEFAULT_LIMITS,
    on_skip: Skip | None = None,
) -> list[Paper]:
    """Papers in ``data`` from ``origin`` (a path or URL), whichever known format it is in;
    ``saved`` is the day a file was written, for dates a saved page shows without a year."""
    text = _decode(data, origin)
    head = text.lstrip()[:512]
    if not head:
        raise ParseError("the file is empty", where=origin, hint=_ANY_HINT)
    if head[0] in "[{":
        return parse_api(text, origin=origin, limits=limits, on_skip=on_skip)
    if _FEED_START.match(head):
        from digest.sources.feed import parse_feed  # feedparser only for feeds

        return parse_feed(data, origin=origin, limits=limits, on_skip=on_skip)
    if _HTML_START.match(head) or (
        not any(marker in text for marker in MARKERS) and "<html" in text[:4096].lower()
    ):
        from digest.sources.hf_page import parse_page_html  # BeautifulSoup only for pages

        return parse_page_html(text, origin=origin, limits=limits, on_skip=on_skip)
    if any(marker in text for marker in MARKERS):
        return parse_text_page(text, origin=origin, today=today, saved=saved, limits=limits)
    raise ParseError(
        "not a Daily Papers format (no JSON, no HTML, no Daily Papers page header)",
        where=origin,
        hint=f"{_ANY_HINT}; {TEXT_HINT}",
    )


def _decode(data: bytes, origin: str) -> str:
    if b"\x00" in data[:8192]:
        raise ParseError("this is a binary file, not text", where=origin, hint=_ANY_HINT)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
            where=origin,
            hint=_ANY_HINT,
        ) from exc
