"""The reader's own pages behind their signed link: a digest in the browser (``/d/TOKEN/ID``),
the archive of past digests (``/a/TOKEN``), the preferences page (``/p/TOKEN``, saved by POST)
and a verdict on a paper (``/f/TOKEN/more|less/KEY``: GET shows it, only the POST records it).

Each page serves only the address its token names: a digest id of another reader is "not found"
for this one, and a forged or altered token gets 403 without a look at the store. A past digest
is rebuilt from the ledger's list of its papers and the store's records of them (highlights from
the reader's keywords); once those records are pruned the archive says it can no longer be shown.
Saved preferences are the differences from the reader's TOML entry (:mod:`digest.preferences`);
with ``[server] self_service = false`` the page says so and saves nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest import feedback, preferences
from digest.errors import StoreError
from digest.models import WEEKDAYS, Match, Paper, Subscriber
from digest.render.environment import make_environment
from digest.render.views import english_date, paper_view
from digest.untrusted import clean_text

if TYPE_CHECKING:
    from digest.server import Service
    from digest.store import PastDigest, Store

ARCHIVE_TEMPLATE = "archive_page.html.j2"
PREFERENCES_TEMPLATE = "preferences_page.html.j2"
MESSAGE_TEMPLATE = "unsubscribe_page.html.j2"
VERDICT_TEMPLATE = "verdict_page.html.j2"


class ReaderPages:
    """The endpoints of a reader's own pages (synchronous, like the unsubscribe pages)."""

    def __init__(self, service: Service, headers: Mapping[str, str]) -> None:
        self._service = service
        self._headers = dict(headers)
        env = make_environment()
        self._archive = env.get_template(ARCHIVE_TEMPLATE)
        self._preferences = env.get_template(PREFERENCES_TEMPLATE)
        self._message = env.get_template(MESSAGE_TEMPLATE)
        self._verdict = env.get_template(VERDICT_TEMPLATE)

    # --- the digest in a browser, and the archive ------------------------------------------------

    def view(self, request: Request) -> Response:
        found = self._reader(request)
        if isinstance(found, Response):
            return found
        subscriber, store = found
        with store:
            subscriber = self._effective(subscriber, store)  # highlights of their keywords now
            past = store.past_digest(subscriber.email, str(request.path_params["digest_id"]))
            html = self._rebuilt(subscriber, past, store) if past is not None else None
        if past is None:
            return self._say(404, "No such digest", "This address was sent no digest of that name.")
        if html is None:
            return self._say(
                410,
                "No longer available",
                "The papers of this digest were pruned from the store; it can no longer be shown.",
            )
        return HTMLResponse(html, headers=self._headers)

    def archive(self, request: Request) -> Response:
        found = self._reader(request)
        if isinstance(found, Response):
            return found
        subscriber, store = found
        links = self._service.links
        with store:
            digests = store.past_digests(subscriber.email)
            kept = store.papers_by_key({key for d in digests for key in d.papers})
        rows = [
            {
                "label": english_date(dt.date.fromisoformat(d.day)),
                "papers": len(d.papers),
                "url": links.view_url(subscriber.email, d.digest_id)
                if all(key in kept for key in d.papers)
                else None,
            }
            for d in digests
        ]
        context = {
            "heading": "Your past digests",
            "address": subscriber.email,
            "digests": rows,
            "preferences_url": links.preferences_url(subscriber.email)
            if self._service.self_service
            else None,
        }
        return self._render(self._archive, 200, context)

    def _rebuilt(self, subscriber: Subscriber, past: PastDigest, store: Store) -> str | None:
        """The digest's email as it was sent, rebuilt; None once its papers are gone."""
        from digest.match.keywords import compile_interests
        from digest.render import Renderer

        papers = store.papers_by_key(set(past.papers))
        if any(key not in papers for key in past.papers):
            return None
        ordered = [papers[key] for key in past.papers]
        # the reader's keywords give the highlights; every paper of the digest is shown
        ranked = {
            m.paper.key: m
            for m in compile_interests([subscriber]).rank_one(subscriber.email, ordered).matches
        }
        matches = [ranked.get(paper.key) or Match(paper=paper) for paper in ordered]
        settings = self._service.render
        assert settings is not None, "service_for sets it"
        rendered = Renderer(settings, inline=False).render(
            subscriber, matches, day=dt.date.fromisoformat(past.day), new_count=past.new_count,
            matched_count=past.matched, digest_id=past.digest_id,
        )  # fmt: skip
        return rendered.html

    # --- preferences -----------------------------------------------------------------------------

    def preferences_page(self, request: Request) -> Response:
        found = self._reader(request)
        if isinstance(found, Response):
            return found
        subscriber, store = found
        with store:
            current = self._effective(subscriber, store)
        return self._preferences_form(200, current, message=self._intro())

    async def save_preferences(self, request: Request) -> Response:
        found = self._reader(request)
        if isinstance(found, Response):
            return found
        subscriber, store = found
        with store:
            current = self._effective(subscriber, store)
        if not self._service.self_service:
            return self._preferences_form(403, current, message=self._intro())
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        today = self._service.now().date()
        settings, problems = preferences.read_form(subscriber, fields, today=today)
        if problems:
            shown = _form_values(fields, current)
            return self._preferences_form(
                400, current, message="Nothing was saved: please fix these.", problems=problems,
                values=shown,
            )  # fmt: skip
        try:
            with self._service.open_store() as writable:
                writable.save_preferences(subscriber.email, settings, self._service.now())
        except StoreError:
            return self._preferences_form(
                503, current, message="The list is busy sending; nothing was saved. Please try "
                "again in a minute.",
            )  # fmt: skip
        saved = preferences.apply(subscriber, settings)
        return self._preferences_form(
            200, saved, message="Saved. The next digest follows these settings."
        )

    def _intro(self) -> str:
        if self._service.self_service:
            return "What your digest looks for, and how often it comes."
        return (
            "Changing your interests here is turned off for this list: write to the sender of "
            "the digest to change them."
        )

    def _effective(self, subscriber: Subscriber, store: Store) -> Subscriber:
        if not self._service.self_service:
            return subscriber
        saved = store.preferences([subscriber.email]).get(subscriber.address, {})
        return preferences.apply(subscriber, saved)

    def _preferences_form(
        self,
        status: int,
        subscriber: Subscriber,
        *,
        message: str,
        problems: list[str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> Response:
        links = self._service.links
        context = {
            "heading": "Your digest",
            "message": message,
            "address": subscriber.email,
            "enabled": self._service.self_service,
            "problems": problems or [],
            "values": values or _values(subscriber),
            "weekdays": WEEKDAYS,
            "pauses": preferences.PAUSES,
            "archive_url": links.archive_url(subscriber.email),
            "semantic": preferences.semantic_installed() or bool(subscriber.about),
        }
        return self._render(self._preferences, status, context)

    # --- verdicts ("more like this", "fewer like this") -----------------------------------------

    def verdict_page(self, request: Request) -> Response:
        found = self._paper(request)
        if isinstance(found, Response):
            return found
        subscriber, paper, verdict, current = found
        word = feedback.WORDS[verdict]
        message = (
            f"You said {word} already; press to say it again, or go back."
            if current == verdict
            else f"Your digest learns from it: {'more' if verdict > 0 else 'fewer'} papers like "
            "this one in the days to come."
        )
        return self._verdict_form(
            200,
            subscriber,
            paper,
            message,
            action=str(request.path_params["verdict"]),
            button=word.capitalize(),
        )

    async def save_verdict(self, request: Request) -> Response:
        found = self._paper(request)
        if isinstance(found, Response):
            return found
        subscriber, paper, verdict, _ = found
        action = (await request.form()).get("action")
        if action not in ("more", "less", "clear"):
            return self._say(400, "Not understood", "That request is not one of ours.")
        value = None if action == "clear" else feedback.VERDICTS[str(action)]
        try:
            with self._service.open_store() as writable:
                feedback.record(writable, subscriber.email, paper, value, self._service.now())
        except StoreError:
            return self._say(
                503, "Busy", "The list is busy sending; nothing was recorded. Please try again "
                "in a minute.",
            )  # fmt: skip
        if value is None:
            return self._verdict_form(
                200, subscriber, paper, "Taken back: this paper no longer counts either way.",
                action=str(request.path_params["verdict"]),
                button=feedback.WORDS[verdict].capitalize(),
            )  # fmt: skip
        return self._verdict_form(
            200, subscriber, paper,
            f"Noted: {feedback.WORDS[value]}. Your next digests follow it.",
            action="clear", button="Undo",
        )  # fmt: skip

    def _paper(self, request: Request) -> tuple[Subscriber, Paper, int, int | None] | Response:
        """The reader, the stored paper, the verdict the link names, and the reader's verdict
        on it so far; or the answer to give instead."""
        found = self._reader(request)
        if isinstance(found, Response):
            return found
        subscriber, store = found
        verdict = feedback.VERDICTS.get(str(request.path_params["verdict"]))
        key = str(request.path_params["key"])
        with store:
            paper = store.papers_by_key({key}).get(key) if verdict is not None else None
            current = store.verdicts([subscriber.email]).get(subscriber.address, {}).get(key)
        if verdict is None or paper is None:
            return self._say(404, "No such paper", "This list holds no paper of that name.")
        return subscriber, paper, verdict, current

    def _verdict_form(
        self, status: int, subscriber: Subscriber, paper: Paper, message: str, *, action: str,
        button: str,
    ) -> Response:  # fmt: skip
        view = paper_view(Match(paper=paper), 0)
        context = {
            "heading": "More like this?"
            if action == "more"
            else "Fewer like this?"
            if action == "less"
            else "Thank you",
            "message": message,
            "address": subscriber.email,
            "paper_title": view.title,
            "paper_link": view.link or None,
            "action": action,
            "button": button,
            "archive_url": self._service.links.archive_url(subscriber.email),
        }
        return self._render(self._verdict, status, context)

    # --- shared --------------------------------------------------------------------------------

    def _reader(self, request: Request) -> tuple[Subscriber, Store] | Response:
        """The subscriber the request's token names, and the store opened read-only for them;
        or the answer to give instead (403 for a token not ours, 404 for an address not listed)."""
        token = str(request.path_params.get("token", ""))
        address = self._service.links.address_in(token)
        if address is None:
            return self._say(
                403,
                "This link is not valid",
                "It was not made for this list, or it was changed. Use the link in your latest "
                "digest; nothing was changed.",
            )
        subscriber = self._service.subscribers.get(address)
        if subscriber is None:
            return self._say(404, "Not on this list", "This address does not get this digest.")
        try:
            return subscriber, self._service.open_store(readonly=True)
        except StoreError:
            return self._say(503, "Busy", "The list is busy; please try again in a minute.")

    def _say(self, status: int, heading: str, message: str) -> Response:
        context: dict[str, Any] = {
            "heading": heading, "message": message, "address": None, "interests": [],
            "action": None, "status": status,
        }  # fmt: skip
        return self._render(self._message, status, context)

    def _render(self, template: jinja2.Template, status: int, context: dict[str, Any]) -> Response:
        full = {"title": clean_text(self._service.title), **context}
        return HTMLResponse(template.render(full), status_code=status, headers=self._headers)


def _values(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "about": "\n".join(subscriber.about),
        "keywords": "\n".join(subscriber.keywords),
        "exclude": "\n".join(subscriber.exclude),
        "max_papers": subscriber.max_papers,
        "frequency": subscriber.frequency,
        "weekday": subscriber.weekday or "monday",
        "day": subscriber.day or 1,
        "paused_until": subscriber.paused_until.isoformat() if subscriber.paused_until else "",
    }


def _form_values(fields: Mapping[str, str], current: Subscriber) -> dict[str, Any]:
    """What the reader typed, shown again with the problems (nothing of it was saved)."""
    values = _values(current)
    for key in ("about", "keywords", "exclude", "max_papers", "frequency", "weekday", "day"):
        if key in fields:
            values[key] = fields[key][:10_000]
    return values
