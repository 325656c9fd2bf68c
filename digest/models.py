"""Pure value types that flow between the stages: papers, subscribers, matches, source outcomes.

Papers and matches are frozen pydantic models with ``extra="forbid"`` (they are also read back from
stores and JSON); :class:`Subscriber` is a frozen dataclass, since a run may build a hundred
thousand of them from an already validated config. Stages hand each other values, never mutable
objects, so any stage can be tested on hand-made data.
"""

from __future__ import annotations

import datetime as dt
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from digest.identity import arxiv_id, normalize_whitespace, paper_key, title_key


class Value(BaseModel):
    """Base for the immutable value types of this module."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Paper(Value):
    """One paper as read from one or more sources, whitespace-normalised.

    ``key`` is filled from ``arxiv_id`` (versionless) or, when unknown, from the title; the store
    may hand back a copy carrying the key under which the paper was first seen.
    """

    key: str = ""
    arxiv_id: str | None = None
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    organization: str | None = None
    submitter_organization: str | None = None
    published: dt.date | None = None
    upvotes: int | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    url: str | None = None
    sources: tuple[str, ...] = ()

    @field_validator("title", "abstract", mode="before")
    @classmethod
    def _collapse_whitespace(cls, value: Any) -> Any:
        return normalize_whitespace(value) if isinstance(value, str) else value

    @field_validator("ai_summary", "organization", "submitter_organization", mode="before")
    @classmethod
    def _collapse_optional(cls, value: Any) -> Any:
        if isinstance(value, str):
            return normalize_whitespace(value) or None
        return value

    @field_validator("authors", "ai_keywords", mode="before")
    @classmethod
    def _collapse_each(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            cleaned = (normalize_whitespace(v) if isinstance(v, str) else v for v in value)
            return tuple(v for v in cleaned if v != "")
        return value

    @field_validator("arxiv_id", mode="before")
    @classmethod
    def _strip_version(cls, value: Any) -> Any:
        return arxiv_id(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fill_key(self) -> Paper:
        if not self.title:
            raise ValueError("a paper needs a title")
        if not self.key:
            object.__setattr__(self, "key", paper_key(self.arxiv_id, self.title))
        if self.author_count is None and self.authors:
            object.__setattr__(self, "author_count", len(self.authors))
        return self

    @property
    def title_key(self) -> str:
        """The normalised title used to recognise the same paper without an arXiv id."""
        return title_key(self.title)

    @property
    def hf_url(self) -> str | None:
        """The paper's Hugging Face page, when its arXiv id is known."""
        if self.url:
            return self.url
        return f"https://huggingface.co/papers/{self.arxiv_id}" if self.arxiv_id else None

    @property
    def arxiv_url(self) -> str | None:
        """The arXiv abstract page, when the id is known."""
        return f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None

    @property
    def pdf_url(self) -> str | None:
        """The arXiv PDF, when the id is known."""
        return f"https://arxiv.org/pdf/{self.arxiv_id}" if self.arxiv_id else None


class Span(Value):
    """A half-open character range ``[start, end)`` of one text field of a paper to highlight."""

    field: Literal["title", "abstract", "ai_summary"]
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Match(Value):
    """Why one paper was picked for one subscriber, and how highly it ranks."""

    paper: Paper
    keywords: tuple[str, ...] = ()
    in_title: bool = False
    score: float = 0.0
    spans: tuple[Span, ...] = ()
    by_authors: tuple[str, ...] = ()  # the followed authors among ``keywords``
    by_organizations: tuple[str, ...] = ()  # and the followed organisations
    close_to: str | None = None  # the description or liked paper it is close in meaning to
    marked: str | None = None  # the paper the reader marked "more like this" it is most like
    similarity: float | None = None  # and how close: the share of recent papers it is closer than
    trending: bool = False  # offered as one of the week's most upvoted, whatever the interests


class SourceFailure(Value):
    """A source (or one file or URL of it) that could not be read, and why, in one line."""

    source: str
    message: str
    hint: str | None = None


class Batch(Value):
    """What reading the sources gave: the papers (de-duplicated), the sources or files that
    failed, and the single entries left out because they were malformed."""

    papers: tuple[Paper, ...] = ()
    failures: tuple[SourceFailure, ...] = ()
    skipped: tuple[SourceFailure, ...] = ()
    entries: int = 0


class Attachment(Value):
    """A file sent with an email (a digest's ``.bib``): its name, media type and text (UTF-8)."""

    # made by the renderer, never from source text; the patterns keep them header-safe anyway
    filename: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    content_type: str = Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$")
    text: str


class Rendered(Value):
    """One subscriber's email, rendered: subject line, HTML part (CSS inlined), text part, and
    the files attached to it."""

    subject: str
    html: str
    text: str
    paper_keys: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()


class NearMiss(Value):
    """A paper that came close to a reader's digest, and what kept it out, in words."""

    paper: Paper
    reason: str


EmptyCause = Literal[
    "no-papers", "sources-failed", "nothing-new", "none-matched", "all-sent", "profile-cut"
]


class Explanation(Value):
    """Why a reader's digest holds no paper, from what the run knows: ``line`` says it in one
    sentence (the email, the run summary and the preview index use it), ``near`` names the
    closest papers and why each missed, when some came close."""

    cause: EmptyCause
    line: str
    near: tuple[NearMiss, ...] = ()


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = typing.get_args(Weekday)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Who gets a digest and which papers interest them: what matching and rendering read.

    A ``[[subscribers]]`` entry is validated straight into this (unknown keys refused, counts
    bounded); every tuple holds the terms as written. The checks that need more than types
    (addresses, terms that cannot match) are :func:`digest.config_sections.subscriber_problems`.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    email: str
    name: str = ""
    keywords: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    about: tuple[Annotated[str, Field(min_length=1, max_length=1000)], ...] = ()
    like: tuple[Annotated[str, Field(pattern=r"^\s*\d{4}\.\d{4,5}(v\d+)?\s*$")], ...] = ()
    # strict: a number written as a string ("3") is a mistake to name, not to guess at
    min_similarity: Annotated[float | None, Field(gt=0, lt=1, strict=True)] = None
    min_upvotes: Annotated[int | None, Field(ge=0, strict=True)] = None
    max_papers: Annotated[int, Field(ge=1, le=500, strict=True)] = 15
    webhook: Annotated[str | None, Field(pattern=r"^https?://[^\s\"<>]+$")] = None  # their own
    trending: Annotated[int | None, Field(ge=0, le=50, strict=True)] = None  # else [digest]
    bibtex: Literal["link", "attach", "off"] | None = None  # else [digest] bibtex
    frequency: Literal["daily", "weekly", "monthly"] = "daily"
    weekday: Weekday | None = None  # for weekly digests (default monday)
    day: Annotated[int | None, Field(ge=1, le=31, strict=True)] = None  # of the month (monthly)
    paused_until: dt.date | None = None  # no digest before this day (a reader's pause)

    @property
    def weekly(self) -> bool:
        """Whether this subscriber gets one digest a week rather than one a day."""
        return self.frequency == "weekly"

    @property
    def monthly(self) -> bool:
        """Whether this subscriber gets one digest a month."""
        return self.frequency == "monthly"

    @property
    def month_day(self) -> int:
        """The day of the month a monthly digest goes out on (default 1; see digest.cadence)."""
        return self.day or 1

    @property
    def weekday_number(self) -> int:
        """The day of the week a weekly digest goes out on (Monday is 0)."""
        return WEEKDAYS.index(self.weekday or "monday")

    @property
    def address(self) -> str:
        """The address as stores key it: one subscriber whatever the case it is written in."""
        return self.email.strip().lower()
