"""The unsubscribe pages as a Starlette app: ``/u/TOKEN`` shown on GET, acted on by POST.

- ``POST /u/TOKEN`` with the form body ``List-Unsubscribe=One-Click`` (what a mail provider
  sends for the ``List-Unsubscribe-Post`` header, RFC 8058) unsubscribes at once and answers 200;
- ``GET /u/TOKEN`` shows the address, its interests and one button; it never changes anything,
  because link scanners and previewers follow every link in a message;
- the button POSTs ``action=unsubscribe``, and the confirmation page that follows offers
  ``action=resubscribe``;
- a token that was not made with this list's secret, or was altered, gets 403 and changes
  nothing; a malformed request gets 400.

No cookie, no session, no JavaScript; every answer is ``no-store`` and sent with a
Content-Security-Policy that allows the page's own style and form and nothing else.
"""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.models import Subscriber
from digest.render.environment import make_environment
from digest.render.views import interests_of
from digest.server import Service
from digest.untrusted import clean_text

PAGE_TEMPLATE = "unsubscribe_page.html.j2"
MAX_BODY = 4096  # a one-click POST or a button's form is a few dozen bytes
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def make_app(service: Service) -> Starlette:
    """The ASGI app of ``digest serve``."""
    template = make_environment().get_template(PAGE_TEMPLATE)
    pages = _Pages(service, template)
    return Starlette(
        routes=[
            Route("/", pages.home, methods=["GET"]),
            Route("/healthz", pages.health, methods=["GET"]),
            Route("/u/{token}", pages.show, methods=["GET"]),
            Route("/u/{token}", pages.act, methods=["POST"]),
        ]
    )


class _Pages:
    """The endpoints (synchronous: Starlette runs them in its thread pool, beside the store)."""

    def __init__(self, service: Service, template: jinja2.Template) -> None:
        self._service = service
        self._template = template

    def home(self, request: Request) -> Response:
        return self._page(
            200, "Unsubscribe service", "Each digest links to its own page here.", action=None
        )

    def health(self, request: Request) -> Response:
        return PlainTextResponse("ok", headers=HEADERS)

    def show(self, request: Request) -> Response:
        address = self._address(request)
        if address is None:
            return self._invalid()
        subscriber = self._service.subscribers.get(address)
        with self._service.open_store(readonly=True) as store:
            state = store.subscriber_states([address]).get(address)
        if subscriber is None:
            return self._page(
                404, "Not on this list", "This address does not get this digest.", action=None
            )
        token = request.path_params["token"]
        if state is not None and state.status != "active":
            left = "You have unsubscribed" if state.status == "unsubscribed" else "Suspended"
            message = (
                "This address gets no more digests."
                if state.status == "unsubscribed"
                else "This address stopped receiving digests: mail to it was refused run after "
                "run. If it works again, subscribe it again."
            )
            return self._page(
                200, left, message, subscriber, "resubscribe", "Subscribe again", token
            )
        return self._page(
            200,
            "Unsubscribe?",
            f"Stop sending {clean_text(self._service.title)} to this address?",
            subscriber,
            "unsubscribe",
            "Unsubscribe",
            token,
        )

    async def act(self, request: Request) -> Response:
        address = self._address(request)
        if address is None:
            return self._invalid()
        body = await request.body()
        if len(body) > MAX_BODY:
            return self._page(413, "Too large", "That request is too large.", action=None)
        form = await request.form()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        action = "unsubscribe" if one_click else form.get("action")
        if action not in ("unsubscribe", "resubscribe"):
            return self._page(
                400, "Not understood", "That request is not one of ours.", action=None
            )
        status = "unsubscribed" if action == "unsubscribe" else "active"
        how = "one-click" if one_click else "web page"
        with self._service.open_store() as store:
            store.set_subscriber_status(address, status, how, self._service.now())
        if one_click:
            return PlainTextResponse(f"{address} is unsubscribed.", headers=HEADERS)
        subscriber = self._service.subscribers.get(address)
        token = request.path_params["token"]
        if status == "unsubscribed":
            return self._page(
                200,
                "You are unsubscribed",
                "No more digests go to this address. Changed your mind?",
                subscriber,
                "resubscribe",
                "Subscribe again",
                token,
                address=address,
            )
        return self._page(
            200,
            "Welcome back",
            "Digests go to this address again from the next one.",
            subscriber,
            "unsubscribe",
            "Unsubscribe",
            token,
            address=address,
        )

    def _address(self, request: Request) -> str | None:
        return self._service.links.address_in(str(request.path_params.get("token", "")))

    def _invalid(self) -> Response:
        return self._page(
            403,
            "This link is not valid",
            "It was not made for this list, or it was changed. Use the link in your latest "
            "digest; nothing was changed.",
            action=None,
        )

    def _page(
        self,
        status: int,
        heading: str,
        message: str,
        subscriber: Subscriber | None = None,
        action: str | None = None,
        button: str = "",
        token: str = "",
        *,
        address: str | None = None,
    ) -> Response:
        context: dict[str, Any] = {
            "title": clean_text(self._service.title),
            "heading": heading,
            "message": message,
            "address": subscriber.email if subscriber is not None else address,
            "interests": interests_of(subscriber) if subscriber is not None else [],
            "action": action,
            "button": button,
            "token": token,
            "status": status,
        }
        return HTMLResponse(self._template.render(context), status_code=status, headers=HEADERS)
