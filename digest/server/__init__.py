"""``digest serve``: the reader's pages every message links to (the ``serve`` extra): one-click
unsubscribe, the digest in a browser, the archive of past digests, the preferences page.

:mod:`.app` is the Starlette app and its unsubscribe pages, :mod:`.reader` the reader's own
pages; :func:`serve_forever` wires it to the configuration, the store and the signing secret,
and runs it on uvicorn. Put it behind the TLS proxy that answers ``[server] base_url``: mail
providers only POST one-click requests to https addresses. A ``base_url`` with a path
(``https://lab.example/digest``) is served under that path, and also at the root for a proxy
that strips it; ``X-Forwarded-*`` headers are believed only from the addresses ``[server]
trusted_proxies`` lists. The port is bound before anything else, so a busy one is a one-line
error.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.config import Config, store_location
from digest.errors import ConfigError, UsageError
from digest.models import Subscriber
from digest.render import RenderSettings
from digest.stage_settings import render_settings, unsubscribe_links
from digest.store import Store, open_store
from digest.store.status_queue import StatusQueue
from digest.unsubscribe import UnsubscribeLinks


@dataclass(frozen=True)
class Service:
    """What the pages need: the list's name, who is subscribed, the store, the links, a clock."""

    title: str
    subscribers: dict[str, Subscriber]  # by address
    open_store: Callable[..., Store]  # open_store(readonly=...) of the configured store
    links: UnsubscribeLinks
    now: Callable[[], dt.datetime]
    queue: StatusQueue | None = None  # where changes wait while the store is busy (SQLite)
    self_service: bool = True  # readers may change their preferences ([server] self_service)
    render: RenderSettings | None = None  # how digests are rendered ("view in browser")

    @property
    def prefix(self) -> str:
        """The path of ``base_url`` (``/digest``), or "" at the root."""
        return urlsplit(self.links.base_url).path.rstrip("/")


def service_for(
    config: Config,
    *,
    env: Mapping[str, str] = os.environ,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Service:
    """What the pages need, from ``config`` (secrets and the store's URL from ``env``);
    ConfigError without ``[server] base_url``."""
    links = unsubscribe_links(config, env)
    if links is None:
        raise ConfigError(
            "digest serve answers the links [server] base_url makes, and it is not set",
            where=str(config.path),
            hint='add [server] base_url = "https://digest.example.org" (the public address)',
        )
    opener = functools.partial(open_store, store_location(config, env), base_dir=config.base_dir)
    with opener(readonly=True) as store:
        queue = None if store.shared else StatusQueue.of(store)
    return Service(
        title=config.digest.title,
        subscribers={s.address: s for s in config.subscriber_list},
        open_store=opener,
        links=links,
        now=clock,
        queue=queue,
        self_service=config.server.self_service,
        render=render_settings(config, env),
    )


def serve_forever(
    config: Config, *, host: str, port: int, env: Mapping[str, str] = os.environ
) -> None:
    """Serve the pages on ``host:port`` until interrupted."""
    try:
        import uvicorn

        from digest.server.app import make_app
    except ImportError as exc:  # the optional extra
        raise UsageError(
            "digest serve needs the serve extra",
            hint="pip install 'paper-digest[serve]'",
        ) from exc
    service = service_for(config, env=env)
    if service.links.base_url.startswith("http://"):
        print(
            f"digest: warning: [server] base_url is {service.links.base_url}: mail providers only "
            "POST one-click unsubscribes to https addresses; use http:// only to try it out",
            file=sys.stderr,
        )
    listener = bind(host, port)
    trusted = list(config.server.trusted_proxies)
    settings = uvicorn.Config(
        make_app(service),
        log_level="warning",
        server_header=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    uvicorn.Server(settings).run(sockets=[listener])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; UsageError (exit 2) when it cannot be had."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = info[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        busy = getattr(exc, "errno", None) == 98  # EADDRINUSE
        raise UsageError(
            f"cannot listen on {host}:{port}: "
            + ("the port is in use" if busy else exc.strerror or str(exc)),
            where="server.port",
            hint="stop what listens there, or choose another port ([server] port or --port)",
        ) from exc
    return listener
