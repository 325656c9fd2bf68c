"""``digest serve``'s Starlette app: its routes, the headers every answer carries, and the
unsubscribe pages, ``/u/TOKEN`` shown on GET, acted on by POST (the reader's other pages are
:mod:`digest.server.reader`).

- ``POST /u/TOKEN`` with the form body ``List-Unsubscribe=One-Click`` (what a mail provider
  sends for the ``List-Unsubscribe-Post`` header, RFC 8058) unsubscribes at once and answers 200;
- ``GET /u/TOKEN`` shows the address, its interests and one button; it never changes anything,
  because link scanners and previewers follow every link in a message;
- the button POSTs ``action=unsubscribe``, and the confirmation page that follows offers
  ``action=resubscribe``;
- a token that was not made with this list's secret, or was altered, gets 403 and changes
  nothing; a malformed request gets 400.

No cookie, no session, no JavaScript; every answer is ``no-store`` and sent with a
Content-Security-Policy that allows the page's own style and form and nothing else. The pages
answer under the path of ``[server] base_url`` and at the root (behind a proxy that strips the
path), and their forms post back to the page's own address, so no link depends on where the app
is mounted. A change that meets a busy store waits in the store's :class:`StatusQueue` and the
reader is told it is done; with no queue to keep it (a shared store), the answer is 503 with
``Retry-After``, never a lost unsubscribe.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.errors import StoreError
from digest.models import Subscriber
from digest.render.environment import make_environment
from digest.render.views import interests_of
from digest.server.reader import ReaderPages
from digest.store.status_queue import StatusChange
from digest.untrusted import clean_text

if TYPE_CHECKING:
    from digest.server import Service

PAGE_TEMPLATE = "unsubscribe_page.html.j2"
MAX_BODY = 4096  # a one-click POST or a button's form is a few dozen bytes
MAX_FORM = 65_536  # a preferences form: a few lines of interests each
RETRY_AFTER = "30"  # seconds, for a change no queue could keep while the store was busy
QUEUE_POLL = 1.0  # seconds between tries to hand waiting changes to the store
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def make_app(service: Service) -> Any:
    """The ASGI app of ``digest serve``."""
    template = make_environment().get_template(PAGE_TEMPLATE)
    pages = _Pages(service, template)
    reader = ReaderPages(service, HEADERS)
    routes = []
    for base in dict.fromkeys([service.prefix, ""]):  # under base_url's path, and at the root
        routes += [
            Route(f"{base}/", pages.home, methods=["GET"]),
            Route(f"{base}/healthz", pages.health, methods=["GET"]),
            Route(f"{base}/u/{{token}}", pages.show, methods=["GET"]),
            Route(f"{base}/u/{{token}}", pages.act, methods=["POST"]),
            Route(f"{base}/d/{{token}}/{{digest_id}}", reader.view, methods=["GET"]),
            Route(f"{base}/a/{{token}}", reader.archive, methods=["GET"]),
            Route(f"{base}/p/{{token}}", reader.preferences_page, methods=["GET"]),
            Route(f"{base}/p/{{token}}", reader.save_preferences, methods=["POST"]),
            Route(
                f"{base}/f/{{token}}/{{verdict}}/{{key:path}}", reader.verdict_page, methods=["GET"]
            ),
            Route(
                f"{base}/f/{{token}}/{{verdict}}/{{key:path}}",
                reader.save_verdict,
                methods=["POST"],
            ),
        ]
    if service.prefix:
        routes.append(Route(service.prefix, pages.home, methods=["GET"]))
    return _Guarded(Starlette(routes=routes))


class _Guarded:
    """Every answer, Starlette's own 404 and 405 included, with the security headers; a POST
    refused by its declared length before its body is read (a body must declare it: the server
    holds the client to it)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in HEADERS.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if scope.get("method") == "POST":
            declared = dict(scope.get("headers") or []).get(b"content-length")
            refusal = None
            if declared is None or not declared.isdigit():
                refusal = PlainTextResponse("Say how long the request is.", 411)
            elif int(declared) > _limit(scope.get("path", "")):
                refusal = PlainTextResponse("That request is too large.", 413)
            if refusal is not None:
                await refusal(scope, receive, guarded_send)
                return
        await self.app(scope, receive, guarded_send)


def _limit(path: str) -> int:
    """How large a POST to ``path`` may be: only the preferences form is more than a button."""
    return MAX_FORM if "/p/" in path else MAX_BODY


class _Pages:
    """The endpoints (synchronous: Starlette runs them in its thread pool, beside the store)."""

    def __init__(self, service: Service, template: jinja2.Template) -> None:
        self._service = service
        self._template = template
        self._applier: threading.Thread | None = None
        self._applier_lock = threading.Lock()

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
        if not self._record(StatusChange(address, status, how, self._service.now())):
            return self._page(
                503, "Busy", "The list is busy sending; please try again in a minute.",
                action=None, retry_after=RETRY_AFTER,
            )  # fmt: skip
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

    def _record(self, change: StatusChange) -> bool:
        """Put ``change`` in the store, or keep it in the queue while the store is busy;
        whether it is safe either way."""
        try:
            with self._service.open_store() as store:
                store.set_subscriber_status(change.email, change.status, change.how, change.when)
            return True
        except StoreError:
            queue = self._service.queue
            if queue is None:
                return False
            queue.add(change)
            self._apply_soon()
            return True

    def _apply_soon(self) -> None:
        """Hand the queue to the store once it is free (one thread at a time)."""
        with self._applier_lock:
            if self._applier is not None and self._applier.is_alive():
                return
            self._applier = threading.Thread(target=self._apply, daemon=True, name="queue")
            self._applier.start()

    def _apply(self) -> None:
        queue = self._service.queue
        while queue is not None and queue.waiting():
            try:
                with self._service.open_store() as store:
                    queue.apply(store)
            except StoreError:
                time.sleep(QUEUE_POLL)

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
        retry_after: str | None = None,
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
        headers = {**HEADERS, "Retry-After": retry_after} if retry_after else HEADERS
        return HTMLResponse(self._template.render(context), status_code=status, headers=headers)
