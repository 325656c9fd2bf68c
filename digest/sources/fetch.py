"""HTTP for sources: one polite httpx client, and GET with retries, backoff and clear failures.

Retried: connection errors, timeouts, 429 and 5xx (transient by nature), with exponential backoff
plus jitter so that several digests restarting together do not hammer the server in lockstep; a
``Retry-After`` in seconds is honoured up to ``MAX_RETRY_AFTER``. Not retried: any other 4xx,
which asking again cannot fix. Every failure leaves as a ``FetchError`` naming the URL.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from http import HTTPStatus

import httpx

from digest import __version__
from digest.config import FetchSection
from digest.errors import FetchError

USER_AGENT = f"paper-digest/{__version__} (+https://github.com/paper-digest)"
MAX_RETRY_AFTER = 60.0
MAX_BACKOFF = 30.0


def make_client(
    fetch: FetchSection, *, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """The shared client: configured timeouts, our User-Agent, redirects followed.

    ``transport`` replaces the network (an ``httpx.MockTransport``, a proxy mount, ...).
    """
    return httpx.Client(
        timeout=httpx.Timeout(fetch.timeout, connect=fetch.connect_timeout),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
        transport=transport,
    )


def get(
    client: httpx.Client,
    url: str,
    *,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> bytes:
    """The body of ``url``; up to ``retries`` more attempts on transient failures."""
    failure = FetchError("not attempted", where=url)
    delay = 0.0
    for attempt in range(retries + 1):
        if attempt:
            sleep(delay)
        outcome = _attempt(client, url)
        if isinstance(outcome, bytes):
            return outcome
        failure, retry_after = outcome
        delay = min(backoff * 2**attempt * (1 + rng()), MAX_BACKOFF)
        if retry_after is not None:
            delay = max(delay, retry_after)
    if retries:
        gave_up = FetchError(
            f"{failure.message} (gave up after {retries + 1} attempts)",
            where=url,
            hint=failure.hint,
            status=failure.status,
        )
        raise gave_up from failure.__cause__
    raise failure


def _attempt(client: httpx.Client, url: str) -> bytes | tuple[FetchError, float | None]:
    """The body, or a retryable failure with its Retry-After; raises what retrying cannot fix."""
    try:
        response = client.get(url)
    except httpx.TimeoutException as exc:
        failure = FetchError(
            f"timed out ({type(exc).__name__})",
            where=url,
            hint="the server is slow or unreachable; raise [fetch] timeout or try later",
        )
        failure.__cause__ = exc
        return failure, None
    except httpx.TransportError as exc:
        if isinstance(exc, httpx.ConnectError) and _unresolvable(exc):
            # No DNS answer means no network or a misspelt host: waiting will not fix either
            # within this run, and an offline run should report it at once, not after backoff.
            raise FetchError(
                f"cannot resolve the host: {exc}",
                where=url,
                hint="check the host name and that this machine is online",
            ) from exc
        failure = FetchError(
            f"cannot connect: {exc}",
            where=url,
            hint="check the URL, your network and any proxy settings",
        )
        failure.__cause__ = exc
        return failure, None
    except httpx.HTTPError as exc:  # e.g. an invalid URL: asking again will not help
        raise FetchError(f"request failed: {exc}", where=url) from exc
    if response.is_success:
        return response.content
    failure = _status_error(response, url)
    if not _transient(response.status_code):
        raise failure
    return failure, _retry_after(response)


def _unresolvable(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _transient(status: int) -> bool:
    return status == HTTPStatus.TOO_MANY_REQUESTS or status >= 500


def _status_error(response: httpx.Response, url: str) -> FetchError:
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason_phrase or "error"
    if status == HTTPStatus.NOT_FOUND:
        hint = "check the URL (for the API, the date may have no papers yet)"
    elif status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        hint = "the server refuses this client; the page may need a login"
    elif _transient(status):
        hint = "the server is overloaded or failing; the next run will try again"
    else:
        hint = "check the URL and the source's settings"
    return FetchError(f"HTTP {status} {phrase}", where=url, hint=hint, status=status)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (capped); an HTTP-date is left to the normal backoff."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw.isdigit():
        return None
    return min(float(raw), MAX_RETRY_AFTER)
