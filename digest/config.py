"""TOML file -> validated ``Config``, with errors that name the file, the line, the key and the fix.

The schema is every section of DESIGN.md; unknown keys are errors with a did-you-mean, because a
misspelt ``exlude`` silently ignored would mail a subscriber exactly what they asked not to get.
The ``[[sources]]`` entries and the channel keys of ``[delivery]`` come from the kinds registered
in :mod:`digest.registry` (:func:`config_schema`): this module imports no stage.
"""

from __future__ import annotations

import functools
import operator
import os
import zoneinfo
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from digest import registry
from digest.addresses import parse_mailbox, wire_address
from digest.config_errors import describe_errors, toml_error
from digest.errors import ConfigError
from digest.models import Subscriber
from digest.schedule.crontab import parse_crontab
from digest.settings import BUNDLED_PREFIX, ChannelOption, Section, SourceSettings
from digest.terms import term_key
from digest.untrusted import LINE_BREAKS, has_letters, strip_controls

DEFAULT_CONFIG_NAME = "digest.toml"
CONFIG_ENV = "DIGEST_CONFIG"
MAX_CONFIG_BYTES = 256 * 1024 * 1024


def bundled_path(name: str) -> Path:
    """A file shipped with the package: inside it when installed, at the repo root when editable."""
    package = Path(__file__).resolve().parent
    installed = package / name
    first = Path(name).parts[0] if Path(name).parts else name
    return installed if (package / first).exists() else package.parent / name


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
        option = channel_options().get(self.method)
        if option is not None and getattr(self, option.key, None) is None:
            what = f"a [delivery.{option.key}] table" if _is_table(option) else f"{option.key}"
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


class Config(Section):
    """The whole validated configuration, plus the file it came from (for relative paths).

    Build one with :func:`load_config` or :func:`parse_config` (or ``Config()`` for the defaults):
    they validate against :func:`config_schema`, which knows every registered source and channel.
    """

    digest: DigestSection = DigestSection()
    schedule: ScheduleSection = ScheduleSection()
    fetch: FetchSection = FetchSection()
    sources: tuple[SourceSettings, ...] = ()
    delivery: DeliverySection = Field(default_factory=DeliverySection)
    subscribers: tuple[SubscriberSection, ...] = ()

    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_subscribers(self) -> Config:
        seen: set[str] = set()
        for sub in self.subscribers:
            address = sub.email.casefold()
            if address in seen:
                raise ValueError(f"{sub.email} is listed twice; merge the two entries")
            seen.add(address)
        return self

    @property
    def path(self) -> Path | None:
        """The file this configuration was read from, if any."""
        return self._path

    @cached_property
    def subscriber_list(self) -> tuple[Subscriber, ...]:
        """Every subscriber as the stages take them, in the file's order."""
        return tuple(section.to_subscriber() for section in self.subscribers)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the file are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, value: str) -> Path:
        """A path from the file, made absolute relative to the file's folder (``~`` expanded).

        ``bundled:NAME`` points into the files shipped with the package (the sample pages), so the
        starter config works from any directory.
        """
        if value.startswith(BUNDLED_PREFIX):
            return bundled_path(value.removeprefix(BUNDLED_PREFIX))
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def samples_only(self) -> bool:
        """Whether there are sources and all are the bundled samples: a demo, never new papers."""
        return bool(self.sources) and all(source.is_bundled for source in self.sources)

    @property
    def store_path(self) -> Path:
        """Where an SQLite store lives (``[digest] store`` as a path)."""
        return self.resolve(self.digest.store.removeprefix("sqlite://"))


@functools.cache
def channel_options() -> Mapping[str, ChannelOption]:
    """Each registered delivery method's key in ``[delivery]``."""
    return {name: registry.load(registry.CHANNELS, name).option for name in registry.CHANNELS}


def _is_table(option: ChannelOption) -> bool:
    return any(
        isinstance(arg, type) and issubclass(arg, Section)
        for arg in (*getattr(option.annotation, "__args__", ()), option.annotation)
    )


@functools.cache
def source_kinds() -> Mapping[str, type[SourceSettings]]:
    """Each registered ``[[sources]] kind`` and its settings model."""
    return {name: registry.load(registry.SOURCES, name) for name in registry.SOURCES}


@functools.cache
def _source_union() -> Any:
    kinds: list[Any] = list(source_kinds().values())
    union = kinds[0] if len(kinds) == 1 else functools.reduce(operator.or_, kinds)
    return Annotated[union, Field(discriminator="kind")]


@functools.cache
def config_schema() -> type[Config]:
    """The ``Config`` model with the registered source kinds and delivery channels filled in."""
    fields: dict[str, Any] = {"method": (Literal[tuple(registry.CHANNELS)], "file")}
    fields.update({o.key: (o.annotation, o.default) for o in channel_options().values()})
    delivery: Any = create_model("DeliverySection", __base__=DeliverySection, **fields)
    sources: Any = tuple[_source_union(), ...]  # type: ignore[misc]
    model: type[Config] = create_model(
        "Config", __base__=Config, sources=(sources, ()), delivery=(delivery, delivery())
    )
    return model


def default_config() -> Config:
    """The configuration of an empty file."""
    return config_schema().model_validate({})


def source_from(data: Mapping[str, Any]) -> SourceSettings:
    """One source entry validated as in ``[[sources]]`` (for ``digest fetch --source``)."""
    adapter: TypeAdapter[SourceSettings] = TypeAdapter(_source_union())
    try:
        return adapter.validate_python(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            str(first["msg"]).removeprefix("Value error, "), where="--source"
        ) from exc


def find_config_path(explicit: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """``--config``, else ``$DIGEST_CONFIG``, else ``./digest.toml``."""
    return Path(explicit or env.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load_config(path: Path) -> Config:
    """Read and validate ``path``; every problem is reported as ``FILE:LINE: key: message``."""
    try:
        text = _read(path)
    except FileNotFoundError as exc:
        raise ConfigError(
            "no such config file",
            where=str(path),
            hint="create one with `digest init`, or pass --config FILE / set $DIGEST_CONFIG",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", where=str(path), hint="save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", where=str(path)) from exc
    return parse_config(text, path)


def _read(path: Path) -> str:
    import stat

    # A FIFO or a device would block or never end: only a regular file can be a config.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise OSError(0, f"larger than {MAX_CONFIG_BYTES // 2**20} MiB")
        return handle.read().decode("utf-8")


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML ``text`` said to come from ``path``."""
    import tomli

    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise toml_error(exc, path) from exc
    try:
        config = config_schema().model_validate(data)
    except ValidationError as exc:
        raise describe_errors(exc, text, path, config_schema()) from exc
    config._path = path.resolve()
    return config
