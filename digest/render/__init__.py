"""Rendering one subscriber's email from their matches: HTML (CSS inlined), text part, subject.

:class:`Renderer` builds the Jinja2 environment once (:mod:`.environment`) and turns a
subscriber's matches into a :class:`~digest.models.Rendered` email: an HTML part with its CSS
inlined (:mod:`.inline` says why that is cheap), a plain-text part with the same content, and a
one-line subject. Papers reach the templates as :class:`~.views.PaperView` values. When the HTML
would pass ``max_html_bytes`` (Gmail clips at about 102 KB and hides the footer), abstracts
shorten, then the last papers move to a "N more papers" list of links. :mod:`.preview` writes
rendered emails to a folder for a browser.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from digest.errors import RenderError
from digest.explain import period_words
from digest.models import Explanation, Match, Rendered, Subscriber
from digest.render.bibtex import BibtexMode, attachment
from digest.render.environment import (
    CARD_TEMPLATE,
    HTML_TEMPLATE,
    STYLESHEET,
    TEXT_TEMPLATE,
    load_template,
    make_environment,
    render_template,
)
from digest.render.inline import Inliner
from digest.render.views import (
    BODY_LEVELS,
    DAY_PAGE,
    MAX_NAME,
    MAX_TITLE,
    PaperView,
    english_date,
    interests_of,
    month_period,
    near_miss_view,
    paper_view,
    week_period,
)
from digest.unsubscribe import UnsubscribeLinks
from digest.untrusted import clean_text, clip, safe_url

__all__ = ["RenderSettings", "Renderer"]

_CACHED = 50_000  # views and cards kept per renderer (a run has a few thousand distinct ones)
OVERVIEW_FROM = 6  # papers from which a digest opens with a numbered overview


@dataclass(frozen=True)
class RenderSettings:
    """What rendering needs from the configuration (``{email}`` in URLs is the subscriber's)."""

    title: str = "Daily Papers digest"
    max_html_bytes: int = 100_000
    bibtex: BibtexMode = "link"  # a subscriber's own ``bibtex`` comes first
    templates: Path | None = None
    unsubscribe_url: str | None = None
    manage_url: str | None = None
    unsubscribe_mailto: str | None = None
    links: UnsubscribeLinks | None = None  # `digest serve`'s pages (they replace unsubscribe_url)
    self_service: bool = True  # with ``links``: readers change their interests on their page
    contact: str | None = None  # an address people may write to (``reply_to``), if any


class Renderer:
    """Renders subscribers' emails; build one per run and reuse it for every subscriber."""

    def __init__(self, settings: RenderSettings, *, inline: bool = True) -> None:
        """``inline=False`` leaves the CSS in ``<style>`` (for checking templates, not sending)."""
        self._settings = settings
        override = settings.templates
        if override is not None and not override.is_dir():
            raise RenderError(
                "templates folder not found",
                where=str(override),
                hint="fix [digest] templates, or remove it to use the bundled templates",
            )
        self._env = make_environment(override)
        self._html = load_template(self._env, HTML_TEMPLATE)
        self._card = load_template(self._env, CARD_TEMPLATE)
        self._text = load_template(self._env, TEXT_TEMPLATE)
        stylesheet = render_template(load_template(self._env, STYLESHEET))
        self._inliner = Inliner(stylesheet) if inline else _NoInlining()
        self._views: dict[tuple[int, int, bool], tuple[Match, PaperView]] = {}
        self._cards: dict[int, tuple[PaperView, str]] = {}
        # Cards are poured into the inlined layout through this text token, unguessable by sources.
        self._slot = f"DIGESTCARDS{os.urandom(8).hex()}"
        self._trending_slot = f"DIGESTTRENDING{os.urandom(8).hex()}"
        # Cards are shared by every reader; their verdict links start here, replaced per reader.
        self._feedback_slot = (
            f"https://feedback.invalid/{os.urandom(8).hex()}/" if settings.links else None
        )

    def _view(self, match: Match, level: int, bibtex: bool) -> PaperView:
        """The view of ``match`` at ``level``, made once per run: thousands of subscribers share
        the same few matches (the matcher shares equal Match values), and so their views."""
        key = (id(match), level, bibtex)
        cached = self._views.get(key)
        if cached is None or cached[0] is not match:
            if len(self._views) >= _CACHED:
                self._views.clear()
            view = paper_view(match, level, bibtex=bibtex, feedback=self._feedback_slot)
            cached = self._views[key] = (match, view)
        return cached[1]

    def _card_of(self, view: PaperView) -> str:
        """The inlined card of ``view``, rendered and inlined once per view."""
        cached = self._cards.get(id(view))
        if cached is None or cached[0] is not view:
            if len(self._cards) >= _CACHED:
                self._cards.clear()
            card = self._inliner.fragment(render_template(self._card, {"paper": view}))
            cached = self._cards[id(view)] = (view, card)
        return cached[1]

    @property
    def inliner(self) -> Inliner | _NoInlining:
        """The CSS inliner and its caches (its ``premailer_runs`` shows how often it paid)."""
        return self._inliner

    def render(
        self,
        subscriber: Subscriber,
        matches: Sequence[Match],
        *,
        day: date,
        new_count: int,
        matched_count: int,
        explanation: Explanation | None = None,
        notice: str | None = None,
        digest_id: str | None = None,
    ) -> Rendered:
        """The email for ``subscriber``: all ``matches`` if they fit the size budget, else as
        many as fit in full plus a list of links; ``paper_keys`` names every paper listed.

        ``explanation`` says why a digest without papers is empty (and names the papers that
        came close); ``notice``, what this run's digests may lack (a source that failed);
        ``digest_id``, the ledger's name of this digest (its "view in browser" page).
        """
        base = self._base_context(subscriber, day, new_count, matched_count)
        links = self._settings.links
        base["view_url"] = (
            links.view_url(subscriber.email, digest_id) if links and digest_id else None
        )
        base["feedback_base"] = links.feedback_base(subscriber.email) if links else None
        base["empty"] = not any(not match.trending for match in matches)
        base["notice"] = clean_text(notice) if notice else None
        base["near_misses"] = []
        if explanation is not None and not matches:
            base["empty_text"] = clean_text(explanation.line)
            base["near_misses"] = [near_miss_view(near) for near in explanation.near]
        budget = self._settings.max_html_bytes
        bibtex = subscriber.bibtex or self._settings.bibtex
        views: list[PaperView] = []
        html = ""
        for level in range(len(BODY_LEVELS)):
            views = [self._view(match, level, bibtex != "off") for match in matches]
            html = self._html_part(base, views, [])
            if _size(html) <= budget:
                return self._attached(bibtex, self._finish(base, views, [], html, 0), matches, day)
        try:
            rendered = self._over_budget(base, views, budget)
        except RenderError as exc:
            raise RenderError(
                f"{subscriber.email}: {exc.message}", where=exc.where, hint=exc.hint
            ) from exc
        return self._attached(bibtex, rendered, matches, day)

    @staticmethod
    def _attached(
        bibtex: BibtexMode, rendered: Rendered, matches: Sequence[Match], day: date
    ) -> Rendered:
        """``rendered`` with the ``.bib`` of every paper it lists, when the reader wants it."""
        if bibtex != "attach" or not rendered.paper_keys:
            return rendered
        listed = set(rendered.paper_keys)
        papers = [match.paper for match in matches if match.paper.key in listed]
        bib = attachment(papers, name=f"papers-{day.isoformat()}.bib")
        return rendered.model_copy(update={"attachments": (bib,)})

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
                    f"the email layout alone exceeds the size budget of {budget:,} bytes",
                    where="[digest] max_html_bytes",
                    hint="shorten this subscriber's name or interests, raise max_html_bytes, "
                    "or slim down the templates",
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
        context.update(self._counts(base, full, overflow, rest))
        text = render_template(self._text, context)
        if self._feedback_slot and base["feedback_base"]:
            text = text.replace(self._feedback_slot, base["feedback_base"])
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
        cards = "".join(self._card_of(view) for view in full if not view.trending)
        trending = "".join(self._card_of(view) for view in full if view.trending)
        context = dict(
            base, papers=full, overflow=overflow, overflow_rest=rest, cards=Markup(self._slot),
            trending_cards=Markup(self._trending_slot) if trending else None,
        )  # fmt: skip
        context.update(self._counts(base, full, overflow, rest))
        layout = self._inliner.document(render_template(self._html, context))
        layout = layout.replace(self._slot, cards, 1)
        if trending:
            layout = layout.replace(self._trending_slot, trending, 1)
        if self._feedback_slot and base["feedback_base"]:
            layout = layout.replace(self._feedback_slot, base["feedback_base"])
        return layout

    @staticmethod
    def _counts(
        base: dict[str, Any], full: Sequence[PaperView], overflow: Sequence[PaperView], rest: int
    ) -> dict[str, Any]:
        listed = len(full) + len(overflow)
        titles = ", ".join(view.title for view in full[:3])
        return {
            "listed_count": listed,
            "subject": base["subject_for"](listed),
            "preheader": titles or base["empty_text"],
            "overview": listed >= OVERVIEW_FROM,
            "number_width": len(str(listed)) + 2,
            # matched but ranked below max_papers: never offered again, so say where they are
            "more_matched": max(base["matched_count"] - listed - rest, 0),
        }

    def _base_context(
        self, subscriber: Subscriber, day: date, new_count: int, matched_count: int
    ) -> dict[str, Any]:
        settings = self._settings
        title = clean_text(settings.title)
        day_short = english_date(day, short=True)

        if subscriber.weekly or subscriber.monthly:
            heading, period = (
                month_period(day, subscriber.month_day) if subscriber.monthly else week_period(day)
            )

            def subject_for(count: int) -> str:
                papers = "no papers" if count == 0 else f"{count} paper{'s' if count != 1 else ''}"
                return clean_text(f"{clip(title, MAX_TITLE)} — {heading} · {papers}")

        else:
            heading, period = english_date(day), None

            def subject_for(count: int) -> str:
                papers = (
                    "no new papers"
                    if count == 0
                    else ("1 new paper" if count == 1 else f"{count} new papers")
                )
                return clean_text(f"{clip(title, MAX_TITLE)} — {day_short}: {papers}")

        when = period_words(subscriber)
        interests = interests_of(subscriber)
        address = quote(subscriber.email, safe="@")
        unsubscribe = settings.unsubscribe_url
        manage = settings.manage_url
        mailto = settings.unsubscribe_mailto
        unsubscribe_url = (
            settings.links.url_for(subscriber.email)
            if settings.links is not None
            else safe_url(unsubscribe.replace("{email}", address))
            if unsubscribe
            else None
        )
        return {
            "title": title,
            "day": day,
            "day_long": english_date(day),
            "day_short": day_short,
            "weekly": subscriber.weekly,
            "monthly": subscriber.monthly,
            "periodic": subscriber.weekly or subscriber.monthly,
            "heading": heading,
            "period": period,
            "new_label": f"new {when}",
            "empty_text": f"No new papers matched your interests {when}.",
            "new_count": new_count,
            "matched_count": matched_count,
            "max_papers": subscriber.max_papers,
            "day_url": f"{DAY_PAGE}{day.isoformat()}",
            "subject_for": subject_for,
            "subscriber_name": clip(clean_text(subscriber.name), MAX_NAME),
            "subscriber_email": subscriber.email,
            "interests": interests,
            "interests_text": "; ".join(f"{label} {terms}" for label, terms in interests),
            "manage_url": (
                settings.links.preferences_url(subscriber.email)
                if settings.links is not None and settings.self_service
                else safe_url(manage.replace("{email}", address))
                if manage
                else None
            ),
            "archive_url": (
                settings.links.archive_url(subscriber.email) if settings.links is not None else None
            ),
            "unsubscribe_url": unsubscribe_url,
            "unsubscribe_mailto": mailto,
            "contact": settings.contact,
            "unsubscribe_address": mailto.removeprefix("mailto:") if mailto else None,
        }


def _size(html: str) -> int:
    return len(html) if html.isascii() else len(html.encode("utf-8"))


class _NoInlining:
    """An :class:`Inliner` that leaves markup as it is."""

    premailer_runs = 0
    shapes_inlined = 0

    def document(self, html: str) -> str:
        return html

    def fragment(self, html: str) -> str:
        return html
