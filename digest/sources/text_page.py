"""Daily Papers pages saved as plain text (a browser's "save as text"), in both known layouts.

After the header (``new``, ``Get trending papers in your email inbox!``, ``Subscribe``,
``Daily Papers``, ``byAK and the research community``, a page date such as ``Nov 5``) each paper
is a title line and an abstract line, optionally followed by metadata::

      • 5 authors          (or an organisation line such as ``openbmb OpenBMB``)
    ·
    Sep 28 2              (a date, with or without a year, then an optional upvote count)

One layout separates these lines with blank lines, the other (``004``) has none and glues
``Subscribe`` to the first title. Blank lines carry no meaning in either, so the parser walks the
non-blank lines once: a title and an abstract are each exactly one line, as browsers save them.

The site omits the year of dates in the current year. A page date shown with its year is taken
as it is; a yearless one as the latest such date not after the day the file was saved (its
modification time, when read from a file) or else read, so a 2025 page read in 2026 keeps its
papers in 2025. A yearless paper date is the latest not after the page date (a page cannot list
a paper published after it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from digest.errors import ParseError
from digest.models import Paper
from digest.sources.limits import DEFAULT_LIMITS, Limits

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_DATE = re.compile(
    r"^(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<day>\d{1,2})"
    r"(?:, (?P<year>\d{4}))?(?: (?P<upvotes>\d{1,9}))?$"  # a count, not a 5,000-digit number
)
_AUTHORS = re.compile(r"^•\s*(?P<count>\d{1,6}) authors?$")
_SEPARATOR = "·"
_SUBSCRIBE = "Subscribe"
_HEADER = frozenset(
    {
        "new",
        "Get trending papers in your email inbox!",
        "Get trending papers in your email inbox once a day!",
        _SUBSCRIBE,
        "Daily Papers",
        "byAK and the research community",
    }
)
# Lines that only a Daily Papers page has; sniffing uses them to recognise a saved text page.
MARKERS = ("Get trending papers in your email inbox", "byAK and the research community")
TEXT_HINT = (
    "expected a Daily Papers page saved as text: header lines, then for each paper a title line, "
    "an abstract line and optional '• N authors' / '·' / date lines"
)


def parse_text_page(
    text: str,
    *,
    origin: str,
    today: dt.date,
    saved: dt.date | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Paper]:
    """Papers on a saved text page; the day it was ``saved`` (else ``today``) resolves dates
    shown without a year. More than ``limits.max_entries`` papers is a ParseError, found as
    the page is read (a page of 100,000 papers would otherwise be held whole)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    read_on = min(saved, today) if saved is not None else today
    start, page_date, glued_title = _skip_header(lines, read_on)
    if glued_title:
        lines[start] = glued_title
    reference = page_date or read_on
    papers: list[Paper] = []
    i = start
    while i < len(lines):
        title = lines[i]
        if i + 1 >= len(lines) or _is_metadata(lines, i + 1):
            raise ParseError(
                f"paper {title[:60]!r} has no abstract line",
                where=f"{origin}: line {_line_number(text, title)}",
                hint=TEXT_HINT,
            )
        abstract = lines[i + 1]
        i += 2
        author_count, organization, published, upvotes, i = _metadata(lines, i, reference)
        if len(papers) >= limits.max_entries:
            raise ParseError(
                f"more than the limit of {limits.max_entries:,} papers",
                where=origin,
                hint="raise [fetch] max_entries if this page really holds that many papers",
            )
        papers.append(
            Paper(
                title=title,
                abstract=abstract,
                author_count=author_count,
                organization=organization,
                published=published,
                upvotes=upvotes,
                sources=(origin,),
            )
        )
    if not papers:
        raise ParseError("no papers after the page header", where=origin, hint=TEXT_HINT)
    return papers


def _skip_header(lines: Sequence[str], today: dt.date) -> tuple[int, dt.date | None, str | None]:
    """Index of the first title, the page date if shown, and the first title if glued."""
    page_date: dt.date | None = None
    seen_subscribe = False
    for i, line in enumerate(lines):
        if line in _HEADER:
            seen_subscribe = seen_subscribe or line == _SUBSCRIBE
            continue
        if page_date is None and (match := _DATE.match(line)) and not match.group("upvotes"):
            page_date, _ = _resolve(match, today)
            continue
        glued = line.removeprefix(_SUBSCRIBE).strip()
        # the one-line layout glues the button's label to the first title
        return i, page_date, (glued if not seen_subscribe and glued != line else None)
    return len(lines), page_date, None


def _is_metadata(lines: Sequence[str], i: int) -> bool:
    line = lines[i]
    if line == _SEPARATOR or _AUTHORS.match(line):
        return True
    return i + 1 < len(lines) and lines[i + 1] == _SEPARATOR


def _metadata(
    lines: Sequence[str], i: int, reference: dt.date
) -> tuple[int | None, str | None, dt.date | None, int | None, int]:
    """The optional metadata lines at ``i``: (author_count, organization, date, upvotes, next i)."""
    author_count: int | None = None
    organization: str | None = None
    published: dt.date | None = None
    upvotes: int | None = None
    if i >= len(lines) or not _is_metadata(lines, i):
        return author_count, organization, published, upvotes, i
    if authors := _AUTHORS.match(lines[i]):
        author_count = int(authors.group("count"))
        i += 1
    elif lines[i] != _SEPARATOR:
        # "openbmb OpenBMB": the organisation's handle, then its display name
        handle, _, display = lines[i].partition(" ")
        organization = display or handle
        i += 1
    if i < len(lines) and lines[i] == _SEPARATOR:
        i += 1
        if i < len(lines) and (match := _DATE.match(lines[i])):
            published, upvotes = _resolve(match, reference)
            i += 1
    return author_count, organization, published, upvotes, i


def _resolve(match: re.Match[str], reference: dt.date) -> tuple[dt.date | None, int | None]:
    """The date of a ``_DATE`` match (yearless: the latest not after ``reference``), upvotes."""
    month = _MONTHS[match.group("month")]
    day = int(match.group("day"))
    upvotes = int(match.group("upvotes")) if match.group("upvotes") else None
    try:
        if match.group("year"):
            return dt.date(int(match.group("year")), month, day), upvotes
        date = _yearless(reference.year, month, day)
        if date > reference:
            date = _yearless(reference.year - 1, month, day)
        return date, upvotes
    except ValueError:
        return None, upvotes


def _yearless(year: int, month: int, day: int) -> dt.date:
    if (month, day) == (2, 29):
        # Feb 29 shown without a year: the latest leap year not after `year`
        while not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
            year -= 1
    return dt.date(year, month, day)


def _line_number(text: str, line: str) -> int:
    return text[: text.find(line)].count("\n") + 1 if line in text else 0
