"""The base types of configuration: a TOML table as a frozen model, and the plug-in sections.

:class:`Section` is every table of the config file (frozen; unknown keys are errors).
:class:`SourceSettings` (a ``[[sources]]`` entry) and :class:`ChannelOption` (a channel's key in
``[delivery]``) are what a source kind or a delivery channel declares in its own module and
registers in :mod:`digest.registry`; :mod:`digest.config` builds its schema from the registered
ones, so it never imports an implementation itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator, model_validator

HF_API_URL = "https://huggingface.co/api/daily_papers"
BUNDLED_PREFIX = "bundled:"


class Section(BaseModel):
    """A TOML table: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def http_url(value: str | None) -> str | None:
    """``value`` when it is an http(s) URL; ValueError (a config message) otherwise."""
    if value is None:
        return value
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {value!r}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
    if not parts.hostname or any(ch.isspace() or ch == "\x00" for ch in value):
        raise ValueError(f"{value!r} is not a valid URL (no host, or spaces in it)")
    return value


def local_path(value: str | None) -> str | None:
    """``value`` when it can name a file; ValueError (a config message) otherwise."""
    if value is not None and "\x00" in value:
        raise ValueError("a path cannot contain a NUL character")
    return value


LocalPath = Annotated[str, AfterValidator(local_path)]
"""A config value naming a file or folder."""


class SourceSettings(Section):
    """One ``[[sources]]`` entry; each kind subclasses it with ``kind: Literal["..."]``."""

    kind: str
    name: str | None = None

    @property
    def label(self) -> str:
        """How reports name this source."""
        return self.name or self.kind

    @property
    def is_bundled(self) -> bool:
        """Whether this source reads only the sample pages shipped with the package."""
        return False


class LocatedSource(SourceSettings):
    """A source read from exactly one of a local ``path`` (file or glob) or a ``url``."""

    url: str | None = None
    path: str | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("path")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        return local_path(value)

    @model_validator(mode="after")
    def _one_location(self) -> LocatedSource:
        if (self.url is None) == (self.path is None):
            raise ValueError(
                f'a {self.kind} source needs exactly one of path = "..." or url = "..."'
            )
        return self

    @property
    def label(self) -> str:
        return self.name or self.path or self.url or self.kind

    @property
    def is_bundled(self) -> bool:
        return self.path is not None and self.path.startswith(BUNDLED_PREFIX)


@dataclass(frozen=True)
class ChannelOption:
    """What a delivery channel adds to ``[delivery]``: one key, its type and its default.

    A table (``smtp``, a :class:`Section`) or a single value (``outbox = "outbox"``). A default of
    None makes the key required when that channel is the ``method``.
    """

    key: str
    annotation: Any
    default: Any
