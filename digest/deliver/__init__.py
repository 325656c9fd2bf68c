"""The Channel interface: a subscriber's rendered digest -> a receipt id the ledger records.

A channel's ``send`` returns only once the digest was *accepted* (an SMTP server answered 250,
a file is complete on disk, a feed was rewritten); only then may the caller record the papers as
delivered. Failures are ``TemporaryDeliveryError`` (try again next run) or
``PermanentDeliveryError`` (will not work as is) and concern that one digest: the channel stays
usable for the next.

A channel kind is a class registered in :data:`digest.registry.CHANNELS` under its ``[delivery]
method`` (see :class:`ChannelKind`): its ``option`` is its key in ``[delivery]`` and ``open``
builds the channel from that key's value. Mail channels (file, maildir, smtp, and the in-memory
one the tests use) build a MIME message with :mod:`.message` and hand it to a transport; the Atom
channel writes feed entries instead.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from digest import registry

if TYPE_CHECKING:
    import httpx
from digest.models import Match, Rendered, Subscriber
from digest.settings import ChannelOption
from digest.unsubscribe import UnsubscribeLinks

__all__ = [
    "Channel",
    "ChannelContext",
    "ChannelKind",
    "MessageSettings",
    "Outgoing",
    "open_channel",
    "target_of",
]


def utc_now() -> dt.datetime:
    """The clock channels use unless given another."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class MessageSettings:
    """What every message carries whatever the channel: sender, list headers, unsubscribe."""

    sender: str = "Paper Digest <digest@example.org>"
    title: str = "Daily Papers digest"
    reply_to: str | None = None
    list_id: str | None = None
    unsubscribe_mailto: str | None = None
    unsubscribe_url: str | None = None
    links: UnsubscribeLinks | None = None  # `digest serve`'s signed pages


@dataclass(frozen=True)
class Outgoing:
    """One subscriber's digest, as any channel may need it.

    ``digest_id`` names this digest of this subscriber stably (a resend after a crash carries
    the same id); ``matches`` are the papers listed, in order, with why they matched.
    """

    subscriber: Subscriber
    rendered: Rendered
    day: dt.date
    now: dt.datetime
    digest_id: str = ""
    matches: tuple[Match, ...] = ()


class Channel(Protocol):
    """Where digests go. ``send`` returns the receipt id once the digest was accepted;
    ``flush`` makes everything accepted so far survive a power cut (the ledger calls it before
    it records a group of deliveries). ``parallel`` is how many ``send`` calls may run at once,
    from as many threads (1: one at a time, from one thread)."""

    @property
    def parallel(self) -> int: ...

    def send(self, outgoing: Outgoing) -> str: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class ChannelContext:
    """What opening a channel may need from outside: headers, paths, secrets, clock, TLS."""

    message: MessageSettings = MessageSettings()
    resolve: Callable[[str], Path] = Path
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], dt.datetime] = utc_now
    ssl_context: ssl.SSLContext | None = None
    http: httpx.BaseTransport | None = None  # for channels that POST (webhook); tests inject one


class ChannelKind(Protocol):
    """A registered channel class: its key in ``[delivery]`` and how to open it."""

    @property
    def option(self) -> ChannelOption:
        """Its key in ``[delivery]``, the key's type and default."""

    @classmethod
    def open(cls, settings: Any, context: ChannelContext) -> Channel:
        """The channel for ``settings`` (the value of its ``[delivery]`` key)."""

    @classmethod
    def target(cls, settings: Any, context: ChannelContext) -> str:
        """Where its digests go, in a few words, for ``digest check``."""


def _kind(method: str) -> ChannelKind:
    return registry.CHANNELS.load(method)


def open_channel(method: str, settings: Any, context: ChannelContext) -> Channel:
    """The channel registered for ``method``, opened on ``settings``."""
    return _kind(method).open(settings, context)


def target_of(method: str, settings: Any, context: ChannelContext) -> str:
    """Where the channel for ``method`` delivers, for ``digest check``."""
    return _kind(method).target(settings, context)


class Closing:
    """Context-manager behaviour for channels and transports with nothing or little to release;
    one send at a time unless a subclass says otherwise."""

    parallel: int = 1

    def flush(self) -> None:
        """Make what was accepted durable (nothing to do, unless overridden)."""

    def close(self) -> None:
        """Release what is held (nothing, unless overridden)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
