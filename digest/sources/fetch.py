"""HTTP for sources: one polite httpx client, and GET with a deadline, retries and a size cap.

Retried: connection errors, timeouts, 429 and 5xx (transient by nature), with exponential backoff
plus jitter so that several digests restarting together do not hammer the server in lockstep; a
``Retry-After`` in seconds is honoured up to ``MAX_RETRY_AFTER``. Not retried: any other 4xx,
which asking again cannot fix. Every failure leaves as a ``FetchError`` naming the URL.

Limits, because a source is untrusted: each request *with its retries* ends by its ``deadline``,
however slowly the server drips bytes (every socket operation is given at most the time left; see
:class:`_DeadlineBackend`); a body is read as a stream and abandoned past ``max_bytes`` of
*decoded* data, so a gzip bomb costs no more memory than an honest large page; redirects are
followed by hand, at most ``MAX_REDIRECTS``, and only to http(s).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

import httpcore
import httpx

from digest import __version__
from digest.errors import FetchError

USER_AGENT = f"paper-digest/{__version__} (+https://github.com/paper-digest)"
MAX_RETRY_AFTER = 15.0  # within the default 30 s deadline, with time to ask again
MAX_BACKOFF = 30.0
MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 8_000_000
DEFAULT_DEADLINE = 30.0
INFLATE_STEP = 1 << 20
MAX_ERROR_BODY = 4096
_MIN_WAIT = 1e-3  # what a socket operation past its deadline is given: fail, but cleanly

Clock = Callable[[], float]


def make_client(
    timeout: float = 20.0,
    connect_timeout: float = 5.0,
    *,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """The shared client: the configured per-operation timeouts, our User-Agent.

    ``transport`` replaces the network (an ``httpx.MockTransport`` in tests); by default requests
    go through a transport that enforces deadlines and uses the environment's proxies.
    """
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        event_hooks={"response": [_refuse_foreign_redirect]},
        transport=transport or DeadlineTransport(),
        trust_env=False,  # proxies are routed by DeadlineTransport, deadlines included
    )


def get(
    client: httpx.Client,
    url: str,
    *,
    retries: int,
    backoff: float,
    deadline: float = DEFAULT_DEADLINE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    clock: Clock = time.monotonic,
    on_retry: Callable[[str, str, float], None] | None = None,
) -> bytes:
    """The body of ``url``; up to ``retries`` more attempts on transient failures, all of them
    done within ``deadline`` seconds of the call; ``on_retry(url, why, delay)`` before each wait."""
    end = clock() + deadline
    with _deadline(end, clock):
        attempt = 0
        while True:
            outcome = _attempt(client, url, max_bytes, end, clock)
            if isinstance(outcome, bytes):
                return outcome
            failure, retry_after = outcome
            delay = min(backoff * 2**attempt * (1 + rng()), MAX_BACKOFF)
            if retry_after is not None:
                delay = max(delay, retry_after)
            late = clock() + (delay if attempt < retries else 0) >= end
            if attempt == retries or late:
                break
            if on_retry is not None:
                on_retry(url, failure.message, delay)
            sleep(delay)
            attempt += 1
    if attempt == 0 and not late:
        raise failure
    why = f"gave up after {attempt + 1} attempt{'s' if attempt else ''}"
    if late:
        why += f": the {deadline:g} s deadline would pass"
    raise FetchError(
        f"{failure.message} ({why})", where=url, hint=failure.hint, status=failure.status
    ) from failure.__cause__


def _attempt(
    client: httpx.Client, url: str, max_bytes: int, end: float, clock: Clock
) -> bytes | tuple[FetchError, float | None]:
    """The body, or a retryable failure with its Retry-After; raises what retrying cannot fix."""
    target = url
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            with client.stream("GET", target) as response:
                if response.is_redirect:
                    target = _redirect_target(response, url)
                    continue
                if not response.is_success:
                    failure = _status_error(response, url)
                    if not _transient(response.status_code):
                        raise failure
                    return failure, _retry_after(response)
                return _body(response, url, max_bytes, end, clock)
        except httpx.TimeoutException as exc:
            late = clock() >= end
            failure = FetchError(
                "the deadline passed" if late else f"timed out ({type(exc).__name__})",
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
            if isinstance(exc, httpx.UnsupportedProtocol):
                raise FetchError(f"cannot fetch {target!r}: {exc}", where=url) from exc
            failure = FetchError(
                f"cannot connect: {exc}",
                where=url,
                hint="check the URL, your network and any proxy settings",
            )
            failure.__cause__ = exc
            return failure, None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # asking again will not help
            raise FetchError(f"request failed: {exc}", where=url) from exc
    raise FetchError(
        f"more than {MAX_REDIRECTS} redirects",
        where=url,
        hint="the server sends the request round in circles; check the URL",
    )


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body, a megabyte at most at a time: httpx inflates each read at once (64 KiB of a
    gzip bomb are 64 MB), so a gzip body is inflated here in bounded steps."""
    layers = [
        layer.strip().lower()
        for header in response.headers.get_list("Content-Encoding")
        for layer in header.split(",")
        if layer.strip() and layer.strip().lower() != "identity"
    ]
    if len(layers) > 1 or (layers and layers[0] not in ("gzip", "x-gzip", "deflate")):
        # gzip inside gzip multiplies a bomb's reach; no Daily Papers server sends it
        raise httpx.DecodingError(
            f"the answer is encoded as {', '.join(layers)}: only one gzip or deflate layer is read"
        )
    if not layers:
        yield from response.iter_bytes()  # no encoding (or identity): nothing httpx decodes
        return
    # gzip, or deflate (zlib-wrapped, as servers send it): 32 + MAX_WBITS reads both headers
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | (16 if layers[0] != "deflate" else 32))
    try:
        for raw in response.iter_raw():
            pending = raw
            while pending and not inflate.eof:
                yield inflate.decompress(pending, INFLATE_STEP)
                pending = inflate.unconsumed_tail
        yield inflate.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(f"the gzip body is corrupt: {exc}") from exc


def _body(response: httpx.Response, url: str, max_bytes: int, end: float, clock: Clock) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(url, max_bytes, f"the server announces {int(declared):,} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in _decoded(response):  # decoded: what a compressed body really weighs
        size += len(chunk)
        if size > max_bytes:
            raise _too_big(url, max_bytes, "the body is larger")
        if clock() >= end:
            raise httpx.ReadTimeout("the deadline passed while reading the body")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(url: str, max_bytes: int, what: str) -> FetchError:
    return FetchError(
        f"{what} than the {max_bytes:,}-byte limit",
        where=url,
        hint="raise [fetch] max_bytes if this source is really that large",
    )


def _refuse_foreign_redirect(response: httpx.Response) -> None:
    """Stop a redirect to anything but http(s) before httpx tries to build a request of it."""
    if not response.is_redirect:
        return
    location = response.headers.get("Location", "")
    scheme = location.partition(":")[0].lower() if ":" in location.split("/", 1)[0] else ""
    if scheme and scheme not in ("http", "https"):
        raise FetchError(
            f"redirected to {location[:80]!r}, which is not an http(s) URL",
            where=str(response.request.url),
            hint="only http and https are fetched; check the source's URL",
        )


def _redirect_target(response: httpx.Response, url: str) -> str:
    location = response.headers.get("Location", "")
    try:
        target = response.url.join(location)
    except httpx.InvalidURL as exc:
        raise FetchError(f"redirected to an invalid URL {location!r}", where=url) from exc
    if target.scheme not in ("http", "https"):
        raise FetchError(
            f"redirected to {location[:80]!r}, which is not an http(s) URL",
            where=url,
            hint="only http and https are fetched; check the source's URL",
        )
    return str(target)


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
    words = _server_words(response)
    said = f': the server says "{words}"' if words and words != phrase else ""
    return FetchError(f"HTTP {status} {phrase}{said}", where=url, hint=hint, status=status)


def _server_words(response: httpx.Response) -> str | None:
    """The server's own error message, when a short JSON body carries one as Hugging Face's does
    (``{"error": "Sorry, we can't find the page you are looking for."}``)."""
    if "json" not in response.headers.get("Content-Type", "json").lower():
        return None
    body = b""
    try:
        for chunk in _decoded(response):
            body += chunk
            if len(body) > MAX_ERROR_BODY:
                return None  # not a short message: nothing worth quoting
    except (httpx.HTTPError, zlib.error):
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    words = data.get("error") if isinstance(data, dict) else None
    if not isinstance(words, str):
        return None
    # untrusted text on its way into a one-line message: one line, printable, short
    line = " ".join("".join(ch for ch in words if ch.isprintable()).split())
    return line[:200] or None


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (capped); an HTTP-date is left to the normal backoff."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw.isdigit():
        return None
    return min(float(raw), MAX_RETRY_AFTER)


# --- deadlines below httpx: every socket operation gets at most the time left -------------------

_budget = threading.local()


@contextmanager
def _deadline(end: float, clock: Clock) -> Iterator[None]:
    """Make ``end`` (on ``clock``) the deadline of this thread's socket operations."""
    previous = getattr(_budget, "current", None)
    _budget.current = (end, clock)
    try:
        yield
    finally:
        _budget.current = previous


def _clip(timeout: float | None) -> float | None:
    current = getattr(_budget, "current", None)
    if current is None:
        return timeout
    end, clock = current
    left: float = max(end - clock(), _MIN_WAIT)
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write waits at most until the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clip(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clip(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _clip(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with deadlines (``socket.getaddrinfo`` itself cannot be cut)."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, _clip(timeout), local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.connect_unix_socket(path, _clip(timeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _Direct(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` on :class:`_DeadlineBackend` (directly or through one proxy)."""

    def __init__(self, proxy: str | None = None) -> None:
        super().__init__()
        backend = _DeadlineBackend()
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=httpx.create_ssl_context(), network_backend=backend
            )
        else:
            url = httpx.URL(proxy)
            self._pool = httpcore.HTTPProxy(
                proxy_url=httpcore.URL(
                    scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
                ),
                ssl_context=httpx.create_ssl_context(),
                network_backend=backend,
            )


class DeadlineTransport(httpx.BaseTransport):
    """Requests with deadlines, sent directly or through the proxy the environment names.

    Proxies are chosen the standard library's way (``https_proxy``, ``http_proxy``,
    ``no_proxy``), per request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: dict[str | None, _Direct] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._for(request.url).handle_request(request)

    def _for(self, url: httpx.URL) -> _Direct:
        proxies = urllib.request.getproxies_environment()
        proxy = proxies.get(url.scheme) or proxies.get("all")
        if proxy and urllib.request.proxy_bypass_environment(url.host, proxies):  # type: ignore[attr-defined]
            proxy = None
        with self._lock:
            transport = self._transports.get(proxy)
            if transport is None:
                transport = self._transports[proxy] = _Direct(proxy)
            return transport

    def close(self) -> None:
        with self._lock:
            for transport in self._transports.values():
                transport.close()
            self._transports.clear()
