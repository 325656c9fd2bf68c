"""One subscriber's email from their matches: Jinja2 templates, CSS inlining, size budget, previews.

:class:`Renderer` builds the Jinja2 environment once (autoescape, ``StrictUndefined``, operator
templates overriding the bundled ones by name) and turns a subscriber's matches into a
:class:`~digest.models.Rendered` email: an HTML part with its CSS inlined (see
:mod:`digest.inline` for why that is cheap), a plain-text part with the same content, and a
one-line subject. When the HTML would pass ``[digest] max_html_bytes`` (Gmail clips at about
102 KB and hides the footer), abstracts shorten, then the last papers move to a "N more papers"
list of links. :func:`write_preview` writes rendered emails to a folder for a browser.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

import digest
from digest.config import Config, SubscriberSection
from digest.errors import RenderError
from digest.highlight import clean_text, highlight, merge_spans, safe_url, shorten
from digest.inline import Inliner
from digest.models import Match, Rendered

HTML_TEMPLATE = "digest.html.j2"
CARD_TEMPLATE = "paper.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"
STYLESHEET = "digest.css"
INDEX_TEMPLATE = "preview_index.html.j2"
TEMPLATE_NAMES = (HTML_TEMPLATE, CARD_TEMPLATE, TEXT_TEMPLATE, STYLESHEET)

TEXT_WIDTH = 76
MAX_AUTHORS = 3
# (sentences, characters) of abstract per paper: the first level that fits the size budget wins.
BODY_LEVELS = ((3, 600), (2, 360), (1, 200))
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_SLUG = re.compile(r"[^a-z0-9]+")


def templates_dir() -> Path:
    """The bundled templates: inside the installed package, else the source tree's folder."""
    packaged = Path(digest.__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(digest.__file__).parent.parent / "templates"


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
    link: str | None
    meta: tuple[str, ...]
    upvotes: int | None
    keywords: tuple[str, ...]
    body: Markup
    body_text: str
    body_label: str
    ellipsis: bool
    more: bool
    links: tuple[LinkView, ...]


def english_date(day: date, *, short: bool = False) -> str:
    """``Mon 06 Oct 2025`` (short) or ``Monday 6 October 2025``, whatever the process locale."""
    if short:
        return f"{_DAYS[day.weekday()][:3]} {day.day:02d} {_MONTHS[day.month - 1][:3]} {day.year}"
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def paper_view(match: Match, level: int) -> PaperView:
    """The template view of ``match`` with its abstract cut to ``BODY_LEVELS[level]``."""
    paper = match.paper
    link = next((url for url in (safe_url(paper.hf_url), safe_url(paper.arxiv_url)) if url), None)
    meta: list[str] = []
    names = [clean_text(name) for name in paper.authors if clean_text(name)]
    total = max(paper.author_count or 0, len(names))
    if names:
        shown = names[:MAX_AUTHORS]
        rest = total - len(shown)
        meta.append(", ".join(shown) + (f" +{rest}" if rest > 0 else ""))
    elif total:
        meta.append(f"{total} authors")
    if paper.organization and clean_text(paper.organization):
        meta.append(clean_text(paper.organization))
    if paper.published:
        meta.append(f"{paper.published.day}\u00a0{_MONTHS[paper.published.month - 1][:3]}\u00a0"
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
    for label, value in (
        ("PDF", paper.pdf_url),
        ("Code", paper.github_repo),
        ("Project page", paper.project_page),
    ):
        if value and clean_text(value):
            links.append(LinkView(label, safe_url(value), clean_text(value)))
    return PaperView(
        key=paper.key,
        title=clean_text(paper.title),
        link=link,
        meta=tuple(meta),
        upvotes=paper.upvotes,
        keywords=tuple(k for k in (clean_text(k) for k in match.keywords) if k),
        body=highlight(excerpt.text, ranges),
        body_text=excerpt.text,
        body_label="AI summary" if field == "ai_summary" else "",
        ellipsis=excerpt.ellipsis,
        more=excerpt.cut,
        links=tuple(links),
    )


def _wrap(value: Any, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """Jinja filter: ``value`` wrapped for the text part; long URLs are never broken."""
    return _wrapped(str(value), width, indent, indent if first is None else first)


@functools.lru_cache(maxsize=16_384)
def _wrapped(text: str, width: int, indent: str, first: str) -> str:
    # The same abstract is wrapped for every subscriber who gets the paper: wrap it once.
    return textwrap.fill(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def make_environment(override: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment: operator templates in ``override`` first, then the bundled ones."""
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(templates_dir())]
    if override is not None:
        loaders.insert(0, jinja2.FileSystemLoader(override))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "html.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap
    return env


def _load(env: jinja2.Environment, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(
            f"template {name} not found",
            where=name,
            hint=f"restore it, or copy the bundled one from {templates_dir() / name}",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"template syntax error: {exc.message}",
            where=f"{exc.filename or name}:{exc.lineno}",
            hint="fix the Jinja2 syntax at that line",
        ) from exc


class Renderer:
    """Renders subscribers' emails; build one per run and reuse it for every subscriber."""

    def __init__(self, config: Config) -> None:
        self._config = config
        override: Path | None = None
        if config.digest.templates:
            override = config.resolve(config.digest.templates)
            if not override.is_dir():
                raise RenderError(
                    "templates folder not found",
                    where=str(override),
                    hint="fix [digest] templates, or remove it to use the bundled templates",
                )
        self._env = make_environment(override)
        self._html = _load(self._env, HTML_TEMPLATE)
        self._card = _load(self._env, CARD_TEMPLATE)
        self._text = _load(self._env, TEXT_TEMPLATE)
        stylesheet = self._call(_load(self._env, STYLESHEET).render, STYLESHEET)
        self._inliner = Inliner(stylesheet)
        # Cards are poured into the inlined layout through this text token, unguessable by sources.
        self._slot = f"DIGESTCARDS{os.urandom(8).hex()}"

    @property
    def inliner(self) -> Inliner:
        """The CSS inliner and its caches (its ``premailer_runs`` shows how often it paid)."""
        return self._inliner

    def render(
        self,
        subscriber: SubscriberSection,
        matches: Sequence[Match],
        *,
        day: date,
        new_count: int,
        matched_count: int,
    ) -> Rendered:
        """The email for ``subscriber``: all ``matches`` if they fit the size budget, else as
        many as fit in full plus a list of links; ``paper_keys`` names every paper listed."""
        base = self._base_context(subscriber, day, new_count, matched_count)
        base["empty"] = not matches
        budget = self._config.digest.max_html_bytes
        views: list[PaperView] = []
        html = ""
        for level in range(len(BODY_LEVELS)):
            views = [paper_view(match, level) for match in matches]
            html = self._html_part(base, views, [])
            if _size(html) <= budget:
                return self._finish(base, views, [], html, 0)
        return self._over_budget(base, views, budget)

    def _over_budget(self, base: dict[str, Any], views: list[PaperView], budget: int) -> Rendered:
        """Keep the most cards that fit in full, listing the rest as links (bisecting both)."""
        listed = len(views)
        while True:
            lo, hi = 0, len(views)
            best: tuple[int, str] | None = None
            while lo <= hi:
                full = (lo + hi) // 2
                html = self._html_part(base, views[:full], views[full:listed], len(views) - listed)
                if _size(html) <= budget:
                    best = (full, html)
                    lo = full + 1
                else:
                    hi = full - 1
            if best is not None:
                full, html = best
                return self._finish(
                    base, views[:full], views[full:listed], html, len(views) - listed
                )
            if listed == 0:
                raise RenderError(
                    "the email layout alone exceeds the size budget",
                    where="[digest] max_html_bytes",
                    hint="raise max_html_bytes or slim down the templates",
                )
            listed //= 2

    def _finish(
        self,
        base: dict[str, Any],
        full: list[PaperView],
        overflow: list[PaperView],
        html: str,
        rest: int,
    ) -> Rendered:
        context = dict(base, papers=full, overflow=overflow, overflow_rest=rest)
        context.update(self._counts(base, full, overflow))
        text = self._call(self._text.render, TEXT_TEMPLATE, context)
        return Rendered(
            subject=base["subject_for"](len(full) + len(overflow)),
            html=html,
            text=text,
            paper_keys=tuple(view.key for view in [*full, *overflow]),
        )

    def _html_part(
        self,
        base: dict[str, Any],
        full: Sequence[PaperView],
        overflow: Sequence[PaperView],
        rest: int = 0,
    ) -> str:
        cards = "".join(
            self._inliner.fragment(self._call(self._card.render, CARD_TEMPLATE, {"paper": view}))
            for view in full
        )
        context = dict(
            base, papers=full, overflow=overflow, overflow_rest=rest, cards=Markup(self._slot)
        )
        context.update(self._counts(base, full, overflow))
        layout = self._inliner.document(self._call(self._html.render, HTML_TEMPLATE, context))
        return layout.replace(self._slot, cards, 1)

    @staticmethod
    def _counts(
        base: dict[str, Any], full: Sequence[PaperView], overflow: Sequence[PaperView]
    ) -> dict[str, Any]:
        listed = len(full) + len(overflow)
        titles = ", ".join(view.title for view in full[:3])
        return {
            "listed_count": listed,
            "subject": base["subject_for"](listed),
            "preheader": titles or "No new papers matched your interests today.",
        }

    def _base_context(
        self, subscriber: SubscriberSection, day: date, new_count: int, matched_count: int
    ) -> dict[str, Any]:
        delivery = self._config.delivery
        title = clean_text(self._config.digest.title)
        day_short = english_date(day, short=True)

        def subject_for(count: int) -> str:
            papers = (
                "no new papers"
                if count == 0
                else ("1 new paper" if count == 1 else f"{count} new papers")
            )
            return clean_text(f"{title} — {day_short}: {papers}")

        interests = [
            (label, ", ".join(clean_text(term) for term in terms))
            for label, terms in (
                ("keywords", subscriber.keywords),
                ("all of", subscriber.require),
                ("none of", subscriber.exclude),
                ("authors", subscriber.authors),
                ("organisations", subscriber.organizations),
            )
            if terms
        ]
        address = quote(subscriber.email, safe="@")
        unsubscribe = delivery.unsubscribe_url
        manage = delivery.manage_url
        mailto = delivery.unsubscribe_mailto
        return {
            "title": title,
            "day": day,
            "day_long": english_date(day),
            "day_short": day_short,
            "new_count": new_count,
            "matched_count": matched_count,
            "subject_for": subject_for,
            "subscriber_name": clean_text(subscriber.name),
            "subscriber_email": subscriber.email,
            "interests": interests,
            "interests_text": "; ".join(f"{label} {terms}" for label, terms in interests),
            "manage_url": safe_url(manage.replace("{email}", address)) if manage else None,
            "unsubscribe_url": (
                safe_url(unsubscribe.replace("{email}", address)) if unsubscribe else None
            ),
            "unsubscribe_mailto": mailto,
            "unsubscribe_address": mailto.removeprefix("mailto:") if mailto else None,
        }

    @staticmethod
    def _call(render: Any, name: str, context: dict[str, Any] | None = None) -> str:
        try:
            return str(render(**(context or {})))
        except jinja2.TemplateError as exc:
            raise RenderError(
                f"template failed: {exc}",
                where=name,
                hint="check the variable names against the bundled template",
            ) from exc


def _size(html: str) -> int:
    return len(html.encode("utf-8"))


def preview_slug(email: str) -> str:
    """A file name stem for ``email``: lower-case letters and digits joined by dashes."""
    return _SLUG.sub("-", email.casefold()).strip("-") or "subscriber"


def _write_atomic(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_preview(out_dir: Path, items: Sequence[tuple[SubscriberSection, Rendered]]) -> list[Path]:
    """Write each email as ``<slug>.html`` and ``<slug>.txt`` plus an ``index.html`` linking them.

    Returns the paths written, index first. Every file is written atomically (temp + rename).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(
            f"cannot create the preview folder: {exc.strerror or exc}",
            where=str(out_dir),
            hint="choose another --out folder",
        ) from exc
    env = make_environment()
    index = _load(env, INDEX_TEMPLATE)
    written: list[Path] = []
    entries: list[dict[str, str]] = []
    used: set[str] = set()
    try:
        for subscriber, rendered in items:
            stem = preview_slug(subscriber.email)
            unique, n = stem, 2
            while unique in used or unique == "index":
                unique, n = f"{stem}-{n}", n + 1
            used.add(unique)
            html_path, text_path = out_dir / f"{unique}.html", out_dir / f"{unique}.txt"
            _write_atomic(html_path, rendered.html)
            _write_atomic(text_path, rendered.text)
            written += [html_path, text_path]
            entries.append(
                {
                    "email": subscriber.email,
                    "subject": rendered.subject,
                    "html": html_path.name,
                    "text": text_path.name,
                }
            )
        index_path = out_dir / "index.html"
        _write_atomic(index_path, Renderer._call(index.render, INDEX_TEMPLATE, {"items": entries}))
    except OSError as exc:
        raise RenderError(
            f"cannot write the preview: {exc.strerror or exc}",
            where=str(exc.filename or out_dir),
            hint="check the folder's permissions and free space",
        ) from exc
    return [index_path, *written]
