"""The Hugging Face Daily Papers JSON API (``/api/daily_papers``): entries -> papers, every era.

The same entry shape is embedded in the page HTML's ``data-props``, so ``hf_page`` reuses
:func:`papers_from_entries`. Only ``paper.id`` and a title are required; every other field
appeared at some point between 2024 and 2026 and is read when present.

:class:`HfApiSource` is ``kind = "hf-api"``: one unit per day for today and the ``days - 1`` days
before (or per ISO week, or per month, with ``period``). The default re-reads the whole lookback
window every run, because Hugging Face's day lists keep growing after the day and take late
submissions for earlier dates; papers already seen are dropped by the store, so re-reading costs
requests, never duplicates.

The API answers one page at a time: ``limit`` entries (50 unless asked, 100 at most) of page ``p``
(from 0). A busy day lists more than 50 papers, so a unit asks ``limit=100`` and follows ``p`` until
a page holds fewer than 50 entries (HF's own page size, so a server that ignores ``limit`` is still
followed) or brings no new paper (a server that ignores ``p`` repeats itself). Every page is one
download under the same deadline, retries and size cap; a page that fails fails its whole day, so
a day is never silently short.

A malformed entry (no ``paper.id``, a number where text belongs) is skipped and reported on its own
(``on_skip``); only a body that is not an array of entries at all fails the whole source.

Authors flagged ``"hidden": true`` are dropped from ``authors`` but still counted in
``author_count``, because that is the "N authors" figure the site prints on its cards and in saved
text pages (the 2024-08-01 page shows "6 authors" for 2407.21781, which has one hidden author), so
the same paper gets the same count from every format.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import Field, ValidationError, field_validator

from digest.errors import FetchError, ParseError, SourceError
from digest.models import Paper
from digest.settings import HF_API_URL, SourceSettings, http_url
from digest.sources import ReadContext, Skip, Unit
from digest.sources.limits import DEFAULT_LIMITS, Limits, check_depth, check_entries
from digest.untrusted import replace_surrogates

PAPER_PAGE = "https://huggingface.co/papers/"
API_HINT = (
    "expected the raw JSON array returned by /api/daily_papers?date=YYYY-MM-DD "
    "(save it with e.g. `curl -o FILE URL`, not by printing Python objects)"
)


PAGE_LIMIT = 100  # the most entries the API hands out in one page
HF_PAGE_SIZE = 50  # what it hands out when `limit` is not understood


class HfApiSource(SourceSettings):
    """``kind = "hf-api"``: the Daily Papers JSON API, one unit per day (or week, or month)."""

    kind: Literal["hf-api"]
    url: str | None = None
    days: int | None = Field(None, ge=1, le=60, strict=True)
    period: Literal["day", "week", "month"] = "day"
    submitter: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[\w.-]+$")

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        return http_url(value)

    @property
    def api_url(self) -> str:
        """The API endpoint, defaulting to Hugging Face's."""
        return self.url or HF_API_URL

    @property
    def label(self) -> str:
        return self.name or self.api_url

    def units(self, context: ReadContext) -> list[Unit]:
        """One unit per day of the window (today and the days before it; default: the lookback
        window), or per ISO week or month that the window touches."""
        days = self.days or context.lookback_days
        window = [context.today - dt.timedelta(days=back) for back in range(days)]
        units: list[Unit] = []
        for query, day in _periods(window, self.period):
            if self.submitter is not None:
                query["submitter"] = self.submitter
            separator = "&" if "?" in self.api_url else "?"
            url = f"{self.api_url}{separator}{urlencode(query)}"
            units.append(Unit(url, partial(_read_pages, context, url, day)))
        return units


def _periods(window: list[dt.date], period: str) -> list[tuple[dict[str, str], dt.date]]:
    """The API queries that cover ``window`` (newest first), each with the day its papers
    default to when they carry no date of their own."""
    queries: dict[str, tuple[dict[str, str], dt.date]] = {}
    for day in window:
        if period == "week":
            year, week, _ = day.isocalendar()
            value = f"{year}-W{week:02d}"
        elif period == "month":
            value = f"{day.year}-{day.month:02d}"
        else:
            value = day.isoformat()
        queries.setdefault(value, ({period if period != "day" else "date": value}, day))
    return list(queries.values())


def _read_pages(context: ReadContext, url: str, day: dt.date, skip: Skip) -> list[Paper]:
    """Every page of one day (week, month): ``p=0, 1, ...`` until a short or repeated page."""
    papers: list[Paper] = []
    seen: set[str] = set()
    for page in range(context.limits.max_entries // HF_PAGE_SIZE + 1):
        page_url = f"{url}&{urlencode({'limit': PAGE_LIMIT, 'p': page})}"
        try:
            body = context.download(page_url)
            text = body.decode("utf-8", "replace")
            found = (
                []
                if text.strip() == "[]"  # the page after the last: an empty array, not an error
                else parse_api(text, origin=url, page_date=day, limits=context.limits, on_skip=skip)
            )
        except SourceError as exc:
            # a page lost is the day cut short: the whole day fails, loudly, and is read again
            # next run, rather than passing for a quiet day
            which = f"page {page + 1} (p={page}): " if page else ""
            where = url if exc.where in (None, page_url) else exc.where
            if isinstance(exc, FetchError):
                raise FetchError(
                    f"{which}{exc.message}", where=where, hint=exc.hint, status=exc.status
                ) from exc
            raise type(exc)(f"{which}{exc.message}", where=where, hint=exc.hint) from exc
        new = [paper for paper in found if paper.key not in seen]
        seen.update(paper.key for paper in new)
        papers.extend(new)
        if len(found) < HF_PAGE_SIZE or not new:
            return papers
        check_entries(papers, context.limits, url)
    return papers


def parse_api(
    text: str,
    *,
    origin: str,
    page_date: dt.date | None = None,
    limits: Limits = DEFAULT_LIMITS,
    on_skip: Skip | None = None,
) -> list[Paper]:
    """Papers from an API response body; ``origin`` (file or URL) goes into each ``sources``.

    Without ``on_skip`` a malformed entry fails the whole body; with it, it is reported and left
    out.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            where=origin,
            hint=API_HINT,
        ) from exc
    except RecursionError as exc:
        raise ParseError("the JSON nests too deeply to read", where=origin, hint=API_HINT) from exc
    except ValueError as exc:  # a number of thousands of digits: Python refuses to read it
        raise ParseError(f"unreadable JSON: {exc}", where=origin, hint=API_HINT) from exc
    check_depth(data, limits, origin)
    if isinstance(data, Mapping) and isinstance(data.get("dailyPapers"), list):
        data = data["dailyPapers"]
    if not isinstance(data, list):
        raise ParseError(
            f"expected a JSON array of entries, got a JSON {_json_type(data)}",
            where=origin,
            hint=API_HINT,
        )
    return papers_from_entries(
        data, origin=origin, page_date=page_date, limits=limits, on_skip=on_skip
    )


def papers_from_entries(
    entries: Sequence[Any],
    *,
    origin: str,
    page_date: dt.date | None = None,
    limits: Limits = DEFAULT_LIMITS,
    on_skip: Skip | None = None,
) -> list[Paper]:
    """One paper per API-shaped entry; a malformed entry is a ParseError naming its index,
    raised, or given to ``on_skip`` and left out. Skipping every entry is an error too."""
    check_entries(list(entries), limits, origin)
    papers: list[Paper] = []
    first_error: ParseError | None = None
    for index, entry in enumerate(entries):
        try:
            papers.append(_paper(entry, index, origin, page_date))
        except ParseError as exc:
            if on_skip is None:
                raise
            first_error = first_error or exc
            on_skip(exc)
    if first_error is not None and not papers:
        raise first_error  # nothing usable at all: the file is wrong, not one entry
    return papers


def _paper(entry: Any, index: int, origin: str, page_date: dt.date | None) -> Paper:
    where = f"{origin}: entry [{index}]"
    if not isinstance(entry, Mapping):
        kind = _json_type(entry)
        looks_like_repr = isinstance(entry, str) and entry.lstrip().startswith("{'")
        raise ParseError(
            f"expected an object, got a JSON {kind}"
            + (" (it looks like a Python repr string)" if looks_like_repr else ""),
            where=where,
            hint=API_HINT,
        )
    paper = entry.get("paper")
    if not isinstance(paper, Mapping):
        raise ParseError("has no `paper` object", where=where, hint=API_HINT)
    paper_id = paper.get("id")
    if not isinstance(paper_id, str) or not paper_id.strip():
        got = "" if paper_id is None else f" (got {_json_type(paper_id)} {str(paper_id)[:40]!r})"
        raise ParseError(f"has no `paper.id` string{got}", where=where, hint=API_HINT)
    paper_id = replace_surrogates(paper_id.strip())
    title = _text(paper.get("title")) or _text(entry.get("title"))
    if not title:
        raise ParseError(f"paper {paper_id} has no title", where=where, hint=API_HINT)
    organization = _organization(paper.get("organization")) or _organization(
        entry.get("organization")
    )
    submitter = entry.get("submittedBy")
    submitter_org = _organization(paper.get("submitterOrganization")) or _organization(
        entry.get("submitterOrganization")
    )
    if submitter_org is None and isinstance(submitter, Mapping):
        submitter_org = _organization(submitter.get("organization"))
    try:
        return Paper(
            arxiv_id=paper_id,
            title=title,
            abstract=_text(paper.get("summary")) or _text(entry.get("summary")) or "",
            authors=_visible_authors(paper.get("authors")),
            author_count=_author_count(paper.get("authors")),
            organization=organization,
            submitter_organization=submitter_org,
            published=iso_date(paper.get("publishedAt"))
            or iso_date(entry.get("publishedAt"))
            or page_date,
            upvotes=_count(paper.get("upvotes")),
            ai_summary=_text(paper.get("ai_summary")),
            ai_keywords=tuple(t for t in map(_text, _list(paper.get("ai_keywords"))) if t),
            github_repo=_http_url(paper.get("githubRepo")),
            github_stars=_count(paper.get("githubStars")),
            project_page=_http_url(paper.get("projectPage")),
            url=paper_url(paper_id),
            sources=(origin,),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "paper"
        raise ParseError(f"paper {paper_id}: {field}: {first['msg']}", where=where) from exc
    except (TypeError, ValueError) as exc:
        raise ParseError(f"paper {paper_id}: {exc}", where=where, hint=API_HINT) from exc


def paper_from_api(data: bytes, *, origin: str) -> Paper:
    """The paper of the Hugging Face paper API's answer for one id (``/api/papers/<id>``)."""
    try:
        found = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"not JSON: {exc}", where=origin, hint=API_HINT) from exc
    if not isinstance(found, Mapping):
        raise ParseError("not a paper object", where=origin, hint=API_HINT)
    return papers_from_entries([{"paper": found}], origin=origin)[0]


def paper_url(paper_id: str) -> str:
    """The paper's Hugging Face page; the id is quoted since it comes from untrusted input."""
    return PAPER_PAGE + quote(paper_id, safe=".")


def _http_url(raw: Any) -> str | None:
    # a "javascript:" or "data:" link from a source must never reach an email as a link
    text = _text(raw)
    return (
        text.strip() if text and text.strip().lower().startswith(("https://", "http://")) else None
    )


def _visible_authors(raw: Any) -> tuple[str, ...]:
    names: list[str] = []
    for author in _list(raw):
        if not isinstance(author, Mapping) or author.get("hidden") is True:
            continue
        name = _text(author.get("name"))
        if name:
            names.append(name)
    return tuple(names)


def _author_count(raw: Any) -> int | None:
    authors = [a for a in _list(raw) if isinstance(a, Mapping) and _text(a.get("name"))]
    return len(authors) if authors else None


def _organization(raw: Any) -> str | None:
    if isinstance(raw, Mapping):
        return _text(raw.get("fullname")) or _text(raw.get("name"))
    return _text(raw)


def iso_date(raw: Any) -> dt.date | None:
    """The calendar date of an ISO timestamp such as ``2024-03-20T02:19:21.000Z``."""
    if not isinstance(raw, str) or len(raw) < 10:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        return None


def _text(raw: Any) -> str | None:
    return replace_surrogates(raw) if isinstance(raw, str) and raw.strip() else None


def _count(raw: Any) -> int | None:
    # bool is an int subclass; a true/false here is not a count
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0 else None


def _list(raw: Any) -> list[Any]:
    return raw if isinstance(raw, list) else []


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
