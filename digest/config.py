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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from digest import registry
from digest.collector import cyclic_gc_paused
from digest.config_errors import describe_errors, toml_error
from digest.config_sections import (
    DeliverySection,
    DigestSection,
    FetchSection,
    Problem,
    ScheduleSection,
    ServerSection,
    channel_options,
    subscriber_problems,
)
from digest.errors import ConfigError
from digest.models import Subscriber
from digest.settings import BUNDLED_PREFIX, Section, SourceSettings

__all__ = [
    "Config",
    "DeliverySection",
    "DigestSection",
    "FetchSection",
    "ScheduleSection",
    "ServerSection",
    "bundled_path",
    "channel_options",
    "config_schema",
    "default_config",
    "find_config_path",
    "load_config",
    "missing_config_hint",
    "parse_config",
    "source_from",
    "store_location",
    "subscriber_from",
]

PROBLEMS = "digest.subscriber_problems"  # the validation context's list of gathered problems

DEFAULT_CONFIG_NAME = "digest.toml"
CONFIG_ENV = "DIGEST_CONFIG"
MAX_CONFIG_BYTES = 256 * 1024 * 1024


def bundled_path(name: str) -> Path:
    """A file shipped with the package: inside it when installed, at the repo root when editable."""
    package = Path(__file__).resolve().parent
    installed = package / name
    first = Path(name).parts[0] if Path(name).parts else name
    return installed if (package / first).exists() else package.parent / name


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
    server: ServerSection = ServerSection()
    subscribers: tuple[Subscriber, ...] = ()

    _path: Path | None = PrivateAttr(default=None)

    @field_validator("subscribers")
    @classmethod
    def _checked_subscribers(
        cls, value: tuple[Subscriber, ...], info: ValidationInfo
    ) -> tuple[Subscriber, ...]:
        # The problems are gathered (with where they are) rather than raised one by one, so a
        # file with several gets them all in one message, each with its line.
        checked, problems = subscriber_problems(value)
        if problems:
            found = (info.context or {}).get(PROBLEMS)
            if found is None:
                raise ValueError(problems[0][1])
            found.extend(problems)
        return checked

    @model_validator(mode="after")
    def _one_unsubscribe_page(self) -> Config:
        if self.server.base_url and self.delivery.unsubscribe_url:
            raise ValueError(
                "[server] base_url and [delivery] unsubscribe_url both name an unsubscribe page; "
                "keep one (base_url: `digest serve` answers the links itself)"
            )
        return self

    @property
    def path(self) -> Path | None:
        """The file this configuration was read from, if any."""
        return self._path

    @property
    def subscriber_list(self) -> tuple[Subscriber, ...]:
        """Every subscriber as the stages take them, in the file's order."""
        return self.subscribers

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
        try:
            path = Path(value).expanduser()
        except RuntimeError as exc:  # "~nosuchuser/..."
            raise ConfigError(
                f"{value!r}: {exc}", where=str(self.path), hint="use an absolute path"
            ) from exc
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
def source_kinds() -> Mapping[str, type[SourceSettings]]:
    """Each registered ``[[sources]] kind`` and its settings model."""
    return {name: registry.SOURCES.load(name) for name in registry.SOURCES}


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


STORE_ENV = "DIGEST_STORE_URL"


def store_location(config: Config, env: Mapping[str, str] = os.environ) -> str:
    """Where the store is: ``$DIGEST_STORE_URL`` (so each host can say, and no URL need sit in
    a shared file), else ``[digest] store``."""
    return env.get(STORE_ENV) or config.digest.store


def find_config_path(explicit: str | None, env: Mapping[str, str] = os.environ) -> Path:
    """``--config``, else ``$DIGEST_CONFIG``, else ``./digest.toml``, made absolute once, so
    that every message names the one file meant whichever folder the command later works in."""
    return Path(explicit or env.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME).absolute()


def missing_config_hint(explicit: str | None, env: Mapping[str, str] = os.environ) -> str:
    """How to fix a config file that is not there, for the way it was named."""
    if explicit:
        return f"check the --config path, or create the file with `digest init {explicit}`"
    if env.get(CONFIG_ENV):
        return (
            f"${CONFIG_ENV} names it (a relative path is taken from the current folder): "
            "fix the variable, or create the file with `digest init`"
        )
    return f"create one with `digest init`, or pass --config FILE / set ${CONFIG_ENV}"


def load_config(path: Path, *, missing_hint: str | None = None) -> Config:
    """Read and validate ``path``; every problem is reported as ``FILE:LINE: key: message``."""
    try:
        text = _read(path)
    except FileNotFoundError as exc:
        raise ConfigError(
            "no such config file", where=str(path), hint=missing_hint or missing_config_hint(None)
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
    with cyclic_gc_paused():  # a table per reader, and a value each: many acyclic objects
        return _parsed(text, path)


def _parsed(text: str, path: Path) -> Config:
    import tomli

    try:
        data = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise toml_error(exc, path) from exc
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, arrays 10,000 deep
        huge = re.search(r"^([^=\n]*)=\s*[+-]?\d{1000,}", text, re.M)
        where = str(path)
        if huge:
            line = text.count("\n", 0, huge.start()) + 1
            where = f"{path}:{line}: {huge.group(1).strip()[:60]}"
        raise ConfigError(
            f"cannot be read as TOML: {str(exc).split(';')[0]}",
            where=where,
            hint="numbers of a few digits and tables nested a few levels are all a config needs",
        ) from exc
    problems: list[Problem] = []
    try:
        config = config_schema().model_validate(data, context={PROBLEMS: problems})
    except ValidationError as exc:
        raise describe_errors(exc, text, path, config_schema(), problems) from exc
    if problems:
        raise describe_errors(None, text, path, config_schema(), problems)
    config._path = path.resolve()
    return config


def subscriber_from(entry: Mapping[str, Any]) -> Subscriber:
    """One ``[[subscribers]]`` entry checked as in a config file (ConfigError otherwise)."""
    config = parse_config_data({"subscribers": [dict(entry)]}, Path("subscriber.toml"))
    return config.subscribers[0]


def parse_config_data(data: Mapping[str, Any], path: Path) -> Config:
    """Validate already-parsed TOML ``data`` said to come from ``path``."""
    problems: list[Problem] = []
    try:
        config = config_schema().model_validate(dict(data), context={PROBLEMS: problems})
    except ValidationError as exc:
        raise describe_errors(exc, "", path, config_schema(), problems) from exc
    if problems:
        raise describe_errors(None, "", path, config_schema(), problems)
    config._path = path.resolve()
    return config
