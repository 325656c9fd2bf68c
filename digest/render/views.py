"""What the templates see of a paper: every string cleaned, every URL vetted, the excerpt cut.

A :class:`PaperView` is built from a :class:`~digest.models.Match` at one of the abstract lengths
of :data:`BODY_LEVELS` (the size budget picks the level); highlights are placed after escaping,
so no source text is ever trusted as markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote, quote_plus

from markupsafe import Markup

from digest.cadence import latest_due, previous_due
from digest.match.closeness import top_share
from digest.models import Match, NearMiss, Paper, Subscriber
from digest.render.bibtex import bibtex_link
from digest.render.highlight import highlight, merge_spans, shorten
from digest.untrusted import clean_text, clip, safe_url

MAX_AUTHORS = 3
# What one field of one paper may take in an email: a source can hand over a 2 MB "title", and
# one such record must cost only itself a shortened line, never the digest its size budget.
MAX_TITLE = 300
MAX_NAME = 80
MAX_ORGANIZATION = 120
MAX_KEYWORD = 60
MAX_KEYWORDS = 12
# (sentences, characters) of abstract per paper: the first level that fits the size budget wins.
BODY_LEVELS = ((3, 600), (2, 360), (1, 200))
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class LinkView:
    """A labelled link; ``href`` is None when the source gave something that is not http(s)."""

    label: str
    href: str | None
    text: str


@dataclass(frozen=True)
class PaperView:
    """One paper as the templates see it: every string cleaned, every URL vetted."""

    key: str
    title: str
    link: str | None  # the paper's page, else a search for its title: never None for a title
    meta: tuple[str, ...]
    upvotes: int | None
    keywords: tuple[str, ...]
    why: str  # what the highlights cannot show: closeness in meaning, a match in hidden text
    body: Markup
    body_text: str
    body_label: str
    ellipsis: bool
    more: bool
    links: tuple[LinkView, ...]
    anchor: str = ""  # the card's id, which the overview links to
    more_url: str = ""  # "more like this" and "fewer like this" (with the reader's links)
    less_url: str = ""
    trending: bool = False  # one of the week's most upvoted, shown whatever the interests


@dataclass(frozen=True)
class NearMissView:
    """A paper that came close to an empty digest, as the templates see it."""

    title: str
    link: str
    reason: str


def near_miss_view(near: NearMiss) -> NearMissView:
    """The template view of a near miss: its title cleaned, its link vetted, its reason."""
    return NearMissView(
        title=clip(clean_text(near.paper.title), MAX_TITLE),
        link=paper_link(near.paper),
        reason=clip(clean_text(near.reason), 2 * MAX_TITLE),
    )


def english_date(day: date, *, short: bool = False) -> str:
    """``Mon 06 Oct 2025`` (short) or ``Monday 6 October 2025``, whatever the process locale."""
    if short:
        return f"{DAYS[day.weekday()][:3]} {day.day:02d} {MONTHS[day.month - 1][:3]} {day.year}"
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


EN_DASH = "\u2013"
HF_SEARCH = "https://huggingface.co/papers?q="
ARXIV_SEARCH = "https://arxiv.org/search/?query="
DAY_PAGE = "https://huggingface.co/papers/date/"
FOOTER_TERMS = 12  # interests listed per kind (a subscriber may have thousands)


def _why(match: Match, highlighted: bool) -> str:
    """The reason a reader cannot see: the description or liked paper a paper is close to in
    meaning, or keywords found only in text the email does not show."""
    parts: list[str] = []
    if match.trending:
        upvotes = f" (▲ {match.paper.upvotes})" if match.paper.upvotes else ""
        parts.append(f"one of this week's most upvoted papers{upvotes}, outside your interests")
    if match.marked:
        parts.append(f"like papers you marked: “{clip(clean_text(match.marked), MAX_TITLE)}”")
    if match.close_to and match.similarity is not None:
        parts.append(
            f"close to {clip(clean_text(match.close_to), MAX_TITLE)} "
            f"({top_share(match.similarity)} of recent papers)"
        )
    if match.by_authors:
        parts.append(f"by {_names(match.by_authors)}, {_whom(match.by_authors, 'author')}")
    if match.by_organizations:
        names = match.by_organizations
        parts.append(f"from {_names(names)}, {_whom(names, 'organisation')}")
    named = {*match.by_authors, *match.by_organizations}
    hidden = [term for term in match.keywords if term not in named]
    if hidden and not match.in_title and not highlighted:
        parts.append("matched in text not shown here (the full abstract or its AI keywords)")
    line = "; ".join(parts)
    return line[:1].upper() + line[1:]


def _names(names: tuple[str, ...]) -> str:
    shown = [clip(clean_text(name), MAX_NAME) for name in names[:3]]
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    if len(shown) > 1 and not more:
        return ", ".join(shown[:-1]) + " and " + shown[-1]
    return ", ".join(shown) + more


def _whom(names: tuple[str, ...], kind: str) -> str:
    return f"an {kind} you follow" if len(names) == 1 else f"{kind}s you follow"


def interests_of(subscriber: Subscriber) -> list[tuple[str, str]]:
    """A subscriber's interests as (label, terms) lines, for the footer and the unsubscribe
    page: the first few of each kind, each shortened, and how many more there are."""
    return [
        (label, _listed(terms))
        for label, terms in (
            ("keywords", subscriber.keywords),
            ("all of", subscriber.require),
            ("none of", subscriber.exclude),
            ("authors", subscriber.authors),
            ("organisations", subscriber.organizations),
        )
        if terms
    ]


def _listed(terms: Sequence[str]) -> str:
    shown = [clip(clean_text(term), MAX_KEYWORD) for term in terms[:FOOTER_TERMS]]
    more = len(terms) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def week_period(day: date) -> tuple[str, str]:
    """``("Week 48", "24\u201330 November 2026")``: the ISO week of a weekly digest sent on ``day``,
    and the seven days it covers (the day itself and the six before)."""
    first = day - timedelta(days=6)
    end = f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    if (first.year, first.month) == (day.year, day.month):
        return f"Week {day.isocalendar().week}", f"{first.day}{EN_DASH}{end}"
    start = f"{first.day} {MONTHS[first.month - 1]}"
    if first.year != day.year:
        start += f" {first.year}"
    return f"Week {day.isocalendar().week}", f"{start} {EN_DASH} {end}"


def month_period(day: date, day_of_month: int) -> tuple[str, str]:
    """``("November 2026", "2 November \u2013 1 December 2026")``: a monthly digest sent on ``day``
    (its reader's day of the month ``day_of_month``), named after the month most of its days
    fall in, and the days since the digest before it."""
    start = latest_due(day, day_of_month)
    if start >= day:
        start = previous_due(day, day_of_month)
    first = start + timedelta(days=1)
    in_first_month = (date(first.year + first.month // 12, first.month % 12 + 1, 1) - first).days
    named = first if (first.year, first.month) == (day.year, day.month) else None
    if named is None:
        named = first if in_first_month > day.day else day
    heading = f"{MONTHS[named.month - 1]} {named.year}"
    end = f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    if (first.year, first.month) == (day.year, day.month):
        return heading, (f"{first.day}{EN_DASH}{end}" if first != day else end)
    begin = f"{first.day} {MONTHS[first.month - 1]}" + (
        f" {first.year}" if first.year != day.year else ""
    )
    return heading, f"{begin} {EN_DASH} {end}"


def paper_link(paper: Paper) -> str:
    """Where a paper's title links: its page, or (a paper known only by its title, from saved
    text pages) a search for the title on Hugging Face papers, and one on arXiv below."""
    return next(
        (url for url in (safe_url(paper.hf_url), safe_url(paper.arxiv_url)) if url),
        f"{HF_SEARCH}{quote_plus(paper.title)}",
    )


def paper_view(
    match: Match, level: int, *, bibtex: bool = False, feedback: str | None = None
) -> PaperView:
    """The template view of ``match`` with its abstract cut to ``BODY_LEVELS[level]``; with
    ``bibtex``, a "BibTeX" link among its links (papers with an arXiv id); with ``feedback``,
    verdict links under it (``feedback`` + ``more/KEY``: the renderer's per-reader slot)."""
    paper = match.paper
    title = clip(clean_text(paper.title), MAX_TITLE)
    link = paper_link(paper)
    meta: list[str] = []
    names = [clip(clean_text(name), MAX_NAME) for name in paper.authors[:10] if clean_text(name)]
    total = max(paper.author_count or 0, len(names))
    if names:
        shown = names[:MAX_AUTHORS]
        rest = total - len(shown)
        meta.append(", ".join(shown) + (f" +{rest}" if rest > 0 else ""))
    elif total:
        meta.append(f"{total} authors")
    if paper.organization and clean_text(paper.organization):
        meta.append(clip(clean_text(paper.organization), MAX_ORGANIZATION))
    if paper.published:
        meta.append(f"{paper.published.day}\u00a0{MONTHS[paper.published.month - 1][:3]}\u00a0"
                    f"{paper.published.year}")  # fmt: skip
    field = "ai_summary" if paper.ai_summary else "abstract"
    source = clean_text(paper.ai_summary or paper.abstract)
    sentences, chars = BODY_LEVELS[min(level, len(BODY_LEVELS) - 1)]
    excerpt = shorten(source, sentences, chars)
    # Spans index the model's normalised text; cleaning changes offsets only when the source held
    # control characters, in which case highlights are dropped rather than misplaced.
    original = paper.ai_summary or paper.abstract
    ranges = merge_spans(match.spans, field, len(excerpt.text)) if source == original else []
    links: list[LinkView] = []
    if not paper.arxiv_id:
        search = f"{ARXIV_SEARCH}{quote_plus(paper.title)}&searchtype=title"
        links.append(LinkView("Search arXiv", search, search))
    for label, value in (
        ("arXiv", paper.arxiv_url),
        ("PDF", paper.pdf_url),
        ("Code", paper.github_repo),
        ("Project page", paper.project_page),
        ("BibTeX", bibtex_link(paper) if bibtex else None),
    ):
        if value and clean_text(value):
            links.append(
                LinkView(label, safe_url(value), clip(clean_text(value), MAX_ORGANIZATION))
            )
    return PaperView(
        why=_why(match, bool(ranges)),
        key=paper.key,
        title=title,
        link=link,
        meta=tuple(meta),
        upvotes=paper.upvotes,
        keywords=tuple(
            clip(k, MAX_KEYWORD)
            for k in (clean_text(k) for k in match.keywords[:MAX_KEYWORDS])
            if k
        ),
        body=highlight(excerpt.text, ranges),
        body_text=excerpt.text,
        body_label="AI summary" if field == "ai_summary" else "",
        ellipsis=excerpt.ellipsis,
        more=excerpt.cut,
        links=tuple(links),
        anchor="paper-" + re.sub(r"[^a-z0-9]+", "-", paper.key.lower()).strip("-"),
        trending=match.trending,
        more_url=f"{feedback}more/{quote(paper.key, safe='')}" if feedback else "",
        less_url=f"{feedback}less/{quote(paper.key, safe='')}" if feedback else "",
    )
