"""The tables of the config file, each a frozen model whose errors say what to write instead.

``[digest]``, ``[schedule]``, ``[fetch]``, the common keys of ``[delivery]`` (each channel adds
its own, see :mod:`digest.config`) and the checks of ``[[subscribers]]`` (whose entries are
validated straight into :class:`digest.models.Subscriber` values). Text that becomes a mail header
must be one line; names lose their control characters; addresses follow
:mod:`digest.addresses`; interests follow :mod:`digest.terms`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from digest import registry
from digest.addresses import parse_mailbox, wire_address
from digest.models import Subscriber
from digest.schedule.crontab import parse_crontab
from digest.settings import ChannelOption, Section, http_url, local_path
from digest.terms import term_key
from digest.untrusted import has_letters, has_line_break, strip_controls


def _one_line(value: str, what: str) -> str:
    if has_line_break(value):
        raise ValueError(f"must be one line ({what})")
    return value


class DigestSection(Section):
    """``[digest]``: what the digest is called, where state lives, which time zone it runs in."""

    title: str = Field("Daily Papers digest", min_length=1)
    store: str = "digest.db"
    timezone: str = "UTC"
    lookback_days: int = Field(3, ge=1, le=365, strict=True)
    templates: str | None = None
    send_empty: bool = Field(False, strict=True)
    bibtex: Literal["link", "attach", "off"] = "link"
    trending: int = Field(0, ge=0, le=50, strict=True)
    max_html_bytes: int = Field(100_000, ge=10_000, strict=True)
    claim_lease: dt.timedelta = Field(dt.timedelta(seconds=300), gt=dt.timedelta(0))

    @field_validator("store", "templates")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return local_path(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
            ) from exc
        return value

    @field_validator("title")
    @classmethod
    def _single_line(cls, value: str) -> str:
        return strip_controls(_one_line(value, "it becomes the email subject"))


class ScheduleSection(Section):
    """``[schedule]``: when ``digest daemon`` runs."""

    cron: str = "0 7 * * 1-5"
    misfire_grace: int = Field(3600, ge=1, strict=True)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        parse_crontab(value)
        return value


class FetchSection(Section):
    """``[fetch]``: how politely and how patiently sources are requested over HTTP."""

    timeout: float = Field(20.0, gt=0, strict=True)
    connect_timeout: float = Field(5.0, gt=0, strict=True)
    deadline: float = Field(30.0, gt=0, strict=True)
    retries: int = Field(3, ge=0, le=10, strict=True)
    backoff: float = Field(1.0, ge=0, strict=True)
    concurrency: int = Field(4, ge=1, le=32, strict=True)
    max_bytes: int = Field(8_000_000, ge=1_000, le=2_000_000_000, strict=True)
    max_entries: int = Field(10_000, ge=1, le=10_000_000, strict=True)
    max_json_depth: int = Field(64, ge=4, le=10_000, strict=True)
    # where liked papers no source brought are looked up (GET <paper_api>/<arXiv id>)
    paper_api: str = "https://huggingface.co/api/papers"

    @field_validator("paper_api")
    @classmethod
    def _http(cls, value: str) -> str:
        checked = http_url(value)
        assert checked is not None
        return checked


class DeliverySection(Section):
    """``[delivery]``: how messages leave and the headers they carry.

    The channel keys (``outbox``, ``maildir``, ``smtp``, ...) are added by :func:`config_schema`
    from each registered channel's :class:`~digest.settings.ChannelOption`; :meth:`option` reads
    them.
    """

    method: str = "file"
    sender: str = Field("Paper Digest <digest@example.org>", alias="from")
    reply_to: str | None = None
    list_id: str | None = None
    unsubscribe_mailto: str | None = None
    unsubscribe_url: str | None = None
    manage_url: str | None = None
    suspend_after_bounces: int = Field(3, ge=0, le=100, strict=True)

    @field_validator("sender", "reply_to", "list_id", "unsubscribe_mailto", "unsubscribe_url")
    @classmethod
    def _no_line_breaks(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value, "it becomes a mail header")

    @field_validator("sender", "reply_to")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_mailbox(value)
        return value

    @field_validator("unsubscribe_url", "manage_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL ({email} is replaced by the subscriber's)")
        return value

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("mailto:"):
            raise ValueError("must be a mailto: address, e.g. 'mailto:leave@example.org'")
        return value

    @model_validator(mode="after")
    def _method_has_its_settings(self) -> DeliverySection:
        option = channel_options().get(self.method)
        if option is not None and getattr(self, option.key, None) is None:
            what = f"a [delivery.{option.key}] table" if is_table(option.annotation) else option.key
            raise ValueError(f"method = {self.method!r} needs {what}")
        return self

    def option(self, key: str) -> Any:
        """The value of a channel's key (see :class:`~digest.settings.ChannelOption`)."""
        return getattr(self, key)


@functools.cache
def channel_options() -> Mapping[str, ChannelOption]:
    """Each registered delivery method's key in ``[delivery]`` (the channels known at load)."""
    return {name: registry.CHANNELS.load(name).option for name in registry.CHANNELS}


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class ServerSection(Section):
    """``[server]``: ``digest serve``, the one-click unsubscribe pages the messages link to."""

    base_url: str | None = None
    secret_env: str = Field("DIGEST_SERVER_SECRET", min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(
        8391, ge=1, le=65535, strict=True
    )  # no common tool's port (8025 is aiosmtpd's)
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-* headers count
    self_service: bool = Field(True, strict=True)  # readers may change their own preferences

    @field_validator("base_url")
    @classmethod
    def _public_https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _one_line(value, "it becomes a mail header").rstrip("/")
        if any(ch in value for ch in ' "<>\\^`{|}') or not value.isascii():
            raise ValueError(
                "has a character a URL in a mail header cannot carry (a space, a quote, <, >, "
                "or non-ASCII): percent-encode it"
            )
        scheme, _, rest = value.partition("://")
        host = rest.split("/")[0].rsplit(":", 1)[0] if not rest.startswith("[") else "[::1]"
        if scheme == "https" and rest:
            return value
        if scheme == "http" and host in LOOPBACK_HOSTS:
            return value  # a local test of `digest serve`: mail providers require https
        raise ValueError(
            "must be the https:// address people reach `digest serve` at "
            "(http:// only for localhost, to try it out)"
        )


Problem = tuple[tuple[str | int, ...], str]
"""Where in the file (a pydantic-style location) and what is wrong."""


def subscriber_problems(
    subscribers: Sequence[Subscriber],
) -> tuple[tuple[Subscriber, ...], list[Problem]]:
    """The ``[[subscribers]]`` as they will be used (names without control characters), and
    what is wrong with any of them: an address nobody can send to, a name over several lines,
    a term that cannot match, a term both wanted and excluded, an address listed twice.

    One loop over plain values, so a list of 100,000 is checked in a fraction of a second;
    repeated terms and domains are judged once.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    checked: list[Subscriber] = []
    for index, subscriber in enumerate(subscribers):
        email = subscriber.email
        try:
            wire_address(email)
        except ValueError as exc:
            problems.append((("subscribers", index, "email"), str(exc)))
        name = subscriber.name
        if name:
            if has_line_break(name):
                problems.append(
                    (("subscribers", index, "name"), "must be one line (it becomes the To: header)")
                )
            clean = strip_controls(name)
            if clean != name:
                subscriber = dataclasses.replace(subscriber, name=clean)
        for field, terms in (
            ("keywords", subscriber.keywords),
            ("require", subscriber.require),
            ("exclude", subscriber.exclude),
            ("authors", subscriber.authors),
            ("organizations", subscriber.organizations),
        ):
            for term in terms:
                problem = _term_problem(term)
                if problem is not None:
                    problems.append(
                        (
                            ("subscribers", index, field),
                            f"{email}: {field} {problem.format(term=term)}",
                        )
                    )
        if subscriber.exclude:
            wanted = {term_key(t) for t in (*subscriber.keywords, *subscriber.require)}
            clash = sorted(t for t in subscriber.exclude if term_key(t) in wanted)
            if clash:
                problems.append(
                    (("subscribers", index, "exclude"),
                     f"{email}: {clash[0]!r} is both wanted and excluded; keep it in only one list")
                )  # fmt: skip
        if subscriber.weekday is not None and not subscriber.weekly:
            problems.append(
                (("subscribers", index, "weekday"),
                 f"{email}: weekday applies to weekly digests; add frequency = \"weekly\" "
                 "or remove it")
            )  # fmt: skip
        if subscriber.day is not None and not subscriber.monthly:
            problems.append(
                (("subscribers", index, "day"),
                 f"{email}: day applies to monthly digests; add frequency = \"monthly\" "
                 "or remove it")
            )  # fmt: skip
        address = email.casefold()
        if address in seen:
            problems.append(
                (("subscribers", index, "email"), f"{email} is listed twice; merge the two entries")
            )
        seen.add(address)
        checked.append(subscriber)
    return tuple(checked), problems


@functools.lru_cache(maxsize=65_536)
def _term_problem(term: str) -> str | None:
    """What is wrong with an interest as written (terms repeat across subscribers: once each)."""
    if not term.strip():
        return "has an empty entry; remove it"
    if not has_letters(term):
        return "entry {term!r} has no letters or digits; remove it"
    return None


def is_table(annotation: Any) -> bool:
    """Whether a channel's option is a table (a Section) rather than a single value."""
    return any(
        isinstance(arg, type) and issubclass(arg, Section)
        for arg in (*getattr(annotation, "__args__", ()), annotation)
    )
