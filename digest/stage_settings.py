"""The configuration as each stage takes it: one function per stage, so no stage reads ``Config``.

Sources get a :class:`~digest.sources.ReadContext`, the renderer :class:`RenderSettings`, a
channel its settings and a :class:`ChannelContext`; the unsubscribe links are signed with the
secret from the environment here, once per run.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

from digest.addresses import parse_mailbox
from digest.config import Config, channel_options
from digest.deliver import Channel, ChannelContext, MessageSettings, open_channel
from digest.render import RenderSettings
from digest.sources import FetchWatcher, Limits, ReadContext
from digest.sources.local import read_regular_file
from digest.unsubscribe import UnsubscribeLinks, links_from

if TYPE_CHECKING:
    import httpx


def read_context(
    config: Config,
    *,
    client: httpx.Client,
    day: dt.date,
    watcher: FetchWatcher | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> ReadContext:
    """How sources read: the day, HTTP through ``client`` with ``[fetch]``'s patience, files;
    ``watcher`` is told of each read and retry; ``cancelled()`` turns True when the run is to
    stop waiting for reads."""
    from digest.sources.fetch import get  # httpx: only commands that read sources load it

    fetch = config.fetch
    limits = Limits(fetch.max_bytes, fetch.max_entries, fetch.max_json_depth)
    download = partial(
        get,
        client,
        retries=fetch.retries,
        backoff=fetch.backoff,
        deadline=fetch.deadline,
        max_bytes=limits.max_bytes,
        on_retry=watcher.retrying if watcher is not None else None,
    )
    return ReadContext(
        today=day,
        download=download,
        read_file=partial(read_regular_file, max_bytes=limits.max_bytes),
        resolve=config.resolve,
        limits=limits,
        lookback_days=config.digest.lookback_days,
        watcher=watcher,
        cancelled=cancelled,
    )


def unsubscribe_links(
    config: Config, env: Mapping[str, str] = os.environ
) -> UnsubscribeLinks | None:
    """The signed links of ``[server]`` (None without ``base_url``); ConfigError when the secret
    is missing."""
    server = config.server
    return links_from(server.base_url, server.secret_env, config.delivery.list_id, env)


def render_settings(config: Config, env: Mapping[str, str] = os.environ) -> RenderSettings:
    """What the renderer needs of ``[digest]``, ``[delivery]`` and ``[server]``."""
    digest, delivery = config.digest, config.delivery
    return RenderSettings(
        title=digest.title,
        max_html_bytes=digest.max_html_bytes,
        bibtex=digest.bibtex,
        templates=config.resolve(digest.templates) if digest.templates else None,
        unsubscribe_url=delivery.unsubscribe_url,
        manage_url=delivery.manage_url,
        unsubscribe_mailto=delivery.unsubscribe_mailto,
        links=unsubscribe_links(config, env),
        self_service=config.server.self_service,
        contact=parse_mailbox(delivery.reply_to)[1] if delivery.reply_to else None,
    )


def message_settings(config: Config, env: Mapping[str, str] = os.environ) -> MessageSettings:
    """The headers every message carries."""
    delivery = config.delivery
    return MessageSettings(
        sender=delivery.sender,
        title=config.digest.title,
        reply_to=delivery.reply_to,
        list_id=delivery.list_id,
        unsubscribe_mailto=delivery.unsubscribe_mailto,
        unsubscribe_url=delivery.unsubscribe_url,
        links=unsubscribe_links(config, env),
    )


def channel_context(config: Config, **overrides: object) -> ChannelContext:
    """What opening the configured channel needs; ``overrides`` replace fields (tests)."""
    context = ChannelContext(message=message_settings(config), resolve=config.resolve)
    return context if not overrides else ChannelContext(**{**context.__dict__, **overrides})


def open_configured_channel(config: Config, **overrides: object) -> Channel:
    """The channel ``[delivery] method`` names, opened on its settings."""
    method = config.delivery.method
    settings = config.delivery.option(channel_options()[method].key)
    return open_channel(method, settings, channel_context(config, **overrides))
