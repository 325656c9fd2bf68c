"""TOML file -> validated ``Config``, with errors that name the file, the line, the key and the fix.

The schema is every section of DESIGN.md; unknown keys are errors with a did-you-mean, because a
misspelt ``exlude`` silently ignored would mail a subscriber exactly what they asked not to get.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from digest.errors import ConfigError
from digest.match import term_key

DEFAULT_CONFIG_NAME = "digest.toml"
CONFIG_ENV = "DIGEST_CONFIG"
HF_API_URL = "https://huggingface.co/api/daily_papers"

_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_HAS_WORD = re.compile(r"[^\W_]")


BUNDLED_PREFIX = "bundled:"


def bundled_path(name: str) -> Path:
    """A file shipped with the package: inside it when installed, at the repo root when editable."""
    package = Path(__file__).resolve().parent
    installed = package / name
    first = Path(name).parts[0] if Path(name).parts else name
    return installed if (package / first).exists() else package.parent / name


class Section(BaseModel):
    """A TOML table: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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
        if "\r" in value or "\n" in value:
            raise ValueError("must be one line (it becomes the email subject)")
        return value


class ScheduleSection(Section):
    """``[schedule]``: when ``digest daemon`` runs."""

    cron: str = "0 7 * * 1-5"
    misfire_grace: int = Field(3600, ge=1)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # Imported here: digest.schedule pulls in APScheduler, which only the daemon needs.
        from digest.schedule import parse_cron

        # The zone is [digest].timezone's to check; the expression's syntax does not depend on it.
        parse_cron(value, "UTC")
        return value


class FetchSection(Section):
    """``[fetch]``: how politely and how patiently sources are requested over HTTP."""

    timeout: float = Field(20.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    backoff: float = Field(1.0, ge=0)
    concurrency: int = Field(4, ge=1, le=32)


class SourceSection(Section):
    """One ``[[sources]]`` entry: the HF API, or a page (HTML, saved text or API JSON)."""

    kind: Literal["hf-api", "page"]
    name: str | None = None
    url: str | None = None
    path: str | None = None
    days: int = Field(1, ge=1, le=60)

    @model_validator(mode="after")
    def _where_to_read(self) -> SourceSection:
        if self.kind == "hf-api":
            if self.path is not None:
                raise ValueError(
                    "an hf-api source is fetched from `url`; to read a saved API response use "
                    'kind = "page" with path = ...'
                )
        elif (self.url is None) == (self.path is None):
            raise ValueError('a page source needs exactly one of path = "..." or url = "..."')
        for url in (self.url,):
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"url must start with http:// or https://, got {url!r}")
        return self

    @property
    def api_url(self) -> str:
        """The API endpoint of an hf-api source, defaulting to Hugging Face's."""
        return self.url or HF_API_URL

    @property
    def is_bundled(self) -> bool:
        """Whether this source reads the sample pages shipped with the package (never new)."""
        return self.path is not None and self.path.startswith(BUNDLED_PREFIX)

    @property
    def label(self) -> str:
        """How reports name this source."""
        return self.name or self.path or self.url or HF_API_URL


class SmtpSection(Section):
    """``[delivery.smtp]``: the outgoing mail server."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str = "DIGEST_SMTP_PASSWORD"
    timeout: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0, le=10)


class DeliverySection(Section):
    """``[delivery]``: how messages leave (file outbox, SMTP or a Maildir) and their headers."""

    method: Literal["file", "smtp", "maildir"] = "file"
    outbox: str = "outbox"
    maildir: str = "Maildir"
    sender: str = Field("Paper Digest <digest@localhost>", alias="from")
    reply_to: str | None = None
    list_id: str | None = None
    unsubscribe_mailto: str | None = None
    unsubscribe_url: str | None = None
    manage_url: str | None = None
    smtp: SmtpSection | None = None

    @field_validator("sender", "reply_to", "list_id", "unsubscribe_mailto", "unsubscribe_url")
    @classmethod
    def _no_line_breaks(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must not contain line breaks (it becomes a mail header)")
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
    def _smtp_needs_server(self) -> DeliverySection:
        if self.method == "smtp" and self.smtp is None:
            raise ValueError('method = "smtp" needs a [delivery.smtp] table with at least host')
        return self


class SubscriberSection(Section):
    """One ``[[subscribers]]`` entry: who gets the digest and which papers interest them."""

    email: str
    name: str = ""
    keywords: list[str] = []
    require: list[str] = []
    exclude: list[str] = []
    authors: list[str] = []
    organizations: list[str] = []
    min_upvotes: int | None = Field(None, ge=0)
    max_papers: int = Field(15, ge=1, le=500)

    @field_validator("email")
    @classmethod
    def _plausible_email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address like 'ada@example.org'")
        return value

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("must be one line (it becomes part of the To: header)")
        return value

    @model_validator(mode="after")
    def _sensible_interests(self) -> SubscriberSection:
        for field in ("keywords", "require", "exclude", "authors", "organizations"):
            for term in getattr(self, field):
                if not term.strip():
                    raise ValueError(f"{self.email}: {field} has an empty entry; remove it")
                if not _HAS_WORD.search(term):
                    raise ValueError(
                        f"{self.email}: {field} entry {term!r} has no letters or digits; remove it"
                    )
        wanted = {_fold(t) for t in [*self.keywords, *self.require]}
        clash = sorted(t for t in self.exclude if _fold(t) in wanted)
        if clash:
            raise ValueError(
                f"{self.email}: {clash[0]!r} is both wanted and excluded; keep it in only one list"
            )
        return self


def _fold(term: str) -> str:
    # The matcher's notion of "the same term" (case, accents, plurals, a trailing *).
    return term_key(term)


class Config(Section):
    """The whole validated configuration, plus the file it came from (for relative paths)."""

    digest: DigestSection = DigestSection()
    schedule: ScheduleSection = ScheduleSection()
    fetch: FetchSection = FetchSection()
    sources: list[SourceSection] = []
    delivery: DeliverySection = DeliverySection()
    subscribers: list[SubscriberSection] = []

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

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the file are resolved against."""
        return self._path.parent if self._path else Path.cwd()

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
        """Where the SQLite store lives."""
        return self.resolve(self.digest.store)


def find_config_path(explicit: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """``--config``, else ``$DIGEST_CONFIG``, else ``./digest.toml``."""
    return Path(explicit or env.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load_config(path: Path) -> Config:
    """Read and validate ``path``; every problem is reported as ``FILE:LINE: key: message``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            "no such config file",
            where=str(path),
            hint="create one with `digest init`, or pass --config FILE / set $DIGEST_CONFIG",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(path)) from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML ``text`` said to come from ``path``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"not valid TOML: {exc}",
            where=str(path),
            hint="check quotes, brackets and that every value has a key = value form",
        ) from exc
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, text, path) for error in exc.errors()]
        raise ConfigError(
            "\n".join(problems), where=None, hint="see config.example.toml for every key"
        ) from exc
    config._path = path.resolve()
    return config


def _describe(error: Any, text: str, path: Path) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    dotted = _dotted(loc)
    line = _line_of(text, loc) or _line_of(text, loc[:-1])
    where = f"{path}:{line}" if line else str(path)
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {guess[0]!r}?" if guess else f"known keys: {', '.join(known)}"
        return f"{where}: {dotted}: unknown key; {fix}"
    if kind == "missing":
        return f"{where}: {dotted}: required key is missing; add {loc[-1]} = ..."
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {error.get('input')!r})"
    return f"{where}: {dotted}: {message}"


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _known_keys(loc: Sequence[str | int]) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            break
        inner = _model_of(field.annotation)
        if inner is None:
            break
        model = inner
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")


def _line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the key or table that ``loc`` points at, or None when not found.

    A line-oriented scan of the (already valid) TOML, tracking the current table and the index
    of each array-of-tables entry; good enough for a key written on its own line.
    """
    target = [p for p in loc]
    counts: dict[str, int] = {}
    table: list[str | int] = []
    best: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            names = [n.strip() for n in header.group(2).split(".")]
            if header.group(1) == "[[":
                joined = ".".join(names)
                counts[joined] = counts.get(joined, -1) + 1
                table = [*names[:-1], names[-1], counts[joined]]
            else:
                table = []
                for i, name in enumerate(names):
                    table.append(name)
                    prefix = ".".join(names[: i + 1])
                    if prefix in counts and i < len(names) - 1:
                        table.append(counts[prefix])
            if table == target:
                return number
            continue
        key = _KEY.match(line)
        if key:
            path = [*table, key.group(1).strip('"')]
            if path == target:
                return number
            if path == target[: len(path)] and best is None:
                best = number
    return best
