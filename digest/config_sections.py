"""The tables of the config file, each a frozen model whose errors say what to write instead.

``[digest]``, ``[schedule]``, ``[fetch]``, the common keys of ``[delivery]`` (each channel adds
its own, see :mod:`digest.config`) and ``[[subscribers]]``. Text that becomes a mail header
must be one line; names lose their control characters; addresses follow
:mod:`digest.addresses`; interests follow :mod:`digest.terms`.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from pydantic import Field, field_validator, model_validator

from digest.addresses import parse_mailbox, wire_address
from digest.models import Subscriber
from digest.schedule.crontab import parse_crontab
from digest.settings import Section, local_path
from digest.terms import term_key
from digest.untrusted import LINE_BREAKS, has_letters, strip_controls


def _one_line(value: str, what: str) -> str:
    if any(ch in LINE_BREAKS for ch in value):
        raise ValueError(f"must be one line ({what})")
    return value


class DigestSection(Section):
    """``[digest]``: what the digest is called, where state lives, which time zone it runs in."""

    title: str = Field("Daily Papers digest", min_length=1)
    store: str = "digest.db"
    timezone: str = "UTC"
    lookback_days: int = Field(3, ge=1, le=365)
    templates: str | None = None
    send_empty: bool = False
    max_html_bytes: int = Field(100_000, ge=10_000)

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
    misfire_grace: int = Field(3600, ge=1)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        parse_crontab(value)
        return value


class FetchSection(Section):
    """``[fetch]``: how politely and how patiently sources are requested over HTTP."""

    timeout: float = Field(20.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    deadline: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    backoff: float = Field(1.0, ge=0)
    concurrency: int = Field(4, ge=1, le=32)
    max_bytes: int = Field(20_000_000, ge=1_000)
    max_entries: int = Field(10_000, ge=1)
    max_json_depth: int = Field(64, ge=4, le=10_000)


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
        from digest.config import channel_options  # the registered channels, known at load

        option = channel_options().get(self.method)
        if option is not None and getattr(self, option.key, None) is None:
            what = f"a [delivery.{option.key}] table" if is_table(option.annotation) else option.key
            raise ValueError(f"method = {self.method!r} needs {what}")
        return self

    def option(self, key: str) -> Any:
        """The value of a channel's key (see :class:`~digest.settings.ChannelOption`)."""
        return getattr(self, key)


class SubscriberSection(Section):
    """One ``[[subscribers]]`` entry: who gets the digest and which papers interest them."""

    email: str
    name: str = ""
    keywords: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    min_upvotes: int | None = Field(None, ge=0)
    max_papers: int = Field(15, ge=1, le=500)

    @field_validator("email")
    @classmethod
    def _usable_email(cls, value: str) -> str:
        wire_address(value)
        return value

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, value: str) -> str:
        return strip_controls(_one_line(value, "it becomes part of the To: header"))

    @model_validator(mode="after")
    def _sensible_interests(self) -> SubscriberSection:
        for field in ("keywords", "require", "exclude", "authors", "organizations"):
            for term in getattr(self, field):
                if not term.strip():
                    raise ValueError(f"{self.email}: {field} has an empty entry; remove it")
                if not has_letters(term):
                    raise ValueError(
                        f"{self.email}: {field} entry {term!r} has no letters or digits; remove it"
                    )
        wanted = {term_key(t) for t in [*self.keywords, *self.require]}
        clash = sorted(t for t in self.exclude if term_key(t) in wanted)
        if clash:
            raise ValueError(
                f"{self.email}: {clash[0]!r} is both wanted and excluded; keep it in only one list"
            )
        return self

    def to_subscriber(self) -> Subscriber:
        """The domain value matching and rendering take."""
        return Subscriber(
            email=self.email,
            name=self.name,
            keywords=self.keywords,
            require=self.require,
            exclude=self.exclude,
            authors=self.authors,
            organizations=self.organizations,
            min_upvotes=self.min_upvotes,
            max_papers=self.max_papers,
        )


def is_table(annotation: Any) -> bool:
    """Whether a channel's option is a table (a Section) rather than a single value."""
    return any(
        isinstance(arg, type) and issubclass(arg, Section)
        for arg in (*getattr(annotation, "__args__", ()), annotation)
    )
