"""``digest serve``: the pages the unsubscribe links of every message open (the ``serve`` extra).

:mod:`.app` is the Starlette app; :func:`serve_forever` wires it to the configuration, the store
and the signing secret, and runs it on uvicorn. Put it behind the TLS proxy that answers
``[server] base_url``: mail providers only POST one-click requests to https addresses.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

from digest.config import Config, store_location
from digest.errors import ConfigError, UsageError
from digest.models import Subscriber
from digest.stage_settings import unsubscribe_links
from digest.store import Store, open_store
from digest.unsubscribe import UnsubscribeLinks


@dataclass(frozen=True)
class Service:
    """What the pages need: the list's name, who is subscribed, the store, the links, a clock."""

    title: str
    subscribers: dict[str, Subscriber]  # by address
    open_store: Callable[..., Store]  # open_store(readonly=...) of the configured store
    links: UnsubscribeLinks
    now: Callable[[], dt.datetime]


def service_for(config: Config) -> Service:
    """What the pages need, from ``config``; ConfigError without ``[server] base_url``."""
    links = unsubscribe_links(config)
    if links is None:
        raise ConfigError(
            "digest serve answers the links [server] base_url makes, and it is not set",
            where=str(config.path),
            hint='add [server] base_url = "https://digest.example.org" (the public address)',
        )
    return Service(
        title=config.digest.title,
        subscribers={s.address: s for s in config.subscriber_list},
        open_store=functools.partial(open_store, store_location(config), base_dir=config.base_dir),
        links=links,
        now=lambda: dt.datetime.now(dt.UTC),
    )


def serve_forever(config: Config, *, host: str, port: int) -> None:
    """Serve the pages on ``host:port`` until interrupted."""
    try:
        import uvicorn

        from digest.server.app import make_app
    except ImportError as exc:  # the optional extra
        raise UsageError(
            "digest serve needs the serve extra",
            hint="pip install 'paper-digest[serve]'",
        ) from exc
    app = make_app(service_for(config))
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
