"""The registries: which module implements each source kind, channel, store and matcher.

One :class:`Registry` per seam, typed by what it holds, so ``mypy --strict`` checks every
implementation against its interface (``tests/test_seams.py`` assigns each one to its Protocol).
Built-in kinds are ``"module:attribute"`` strings here; other packages add theirs through entry
points in the registry's group, which load the same way::

    [project.entry-points."paper_digest.sources"]
    jsonl = "digest_jsonl:JsonlSource"

Nothing is imported until asked for, so ``digest --help`` pays for none of it and configuration
can name a kind without importing its dependencies (httpx, bs4, feedparser, ...). A plugin whose
entry point cannot be loaded is a one-line :class:`~digest.errors.ConfigError` naming it; a
plugin may not take a built-in name. ``digest check`` lists every kind and where it came from.

- ``SOURCES`` (``paper_digest.sources``): ``[[sources]] kind`` -> the settings model (a
  :class:`digest.settings.SourceSettings` with ``kind: Literal[...]`` that implements
  :class:`digest.sources.Source`).
- ``CHANNELS`` (``paper_digest.channels``): ``[delivery] method`` -> the channel class
  (:class:`digest.deliver.ChannelKind`); its ``option`` is its key in ``[delivery]``.
- ``STORES`` (``paper_digest.stores``): the scheme of ``[digest] store`` (a bare path is
  ``sqlite``) -> the backend class (:class:`digest.store.StoreBackend`).
- ``MATCHERS`` (``paper_digest.matchers``): name -> the matcher factory
  (:class:`digest.match.MatcherFactory`: subscribers and a context -> a matcher, or None when
  it has nothing to add); :data:`digest.match.LAYERS` names the ones a compile stacks.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from digest.errors import ConfigError

if TYPE_CHECKING:
    from digest.deliver import ChannelKind
    from digest.match import MatcherFactory
    from digest.settings import SourceSettings
    from digest.store import StoreBackend

T = TypeVar("T")
BUILT_IN = "built-in"


class Registry(Generic[T]):
    """The implementations of one seam: built-in ones and those of installed plugins."""

    def __init__(self, group: str, built_in: Mapping[str, str]) -> None:
        self.group = group
        self._built_in = dict(built_in)

    def __contains__(self, name: object) -> bool:
        return name in self._targets()

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets())

    def __len__(self) -> int:
        return len(self._targets())

    def origin(self, name: str) -> str:
        """Where ``name`` comes from: ``built-in``, or the plugin's distribution."""
        return self._targets()[name][1]

    def load(self, name: str) -> T:
        """The implementation registered under ``name`` (KeyError when there is none)."""
        target, origin = self._targets()[name]
        module, _, attribute = target.partition(":")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            if origin == BUILT_IN:
                raise
            raise ConfigError(
                f"the plugin {origin} registers {name!r} as {target}, which cannot be loaded: "
                f"{exc}",
                where=f"entry point {self.group}",
                hint=f"reinstall or upgrade {origin.split()[0]}, or uninstall it",
            ) from exc
        return cast(T, found)

    def _targets(self) -> dict[str, tuple[str, str]]:
        found = {name: (target, BUILT_IN) for name, target in self._built_in.items()}
        for point in _entry_points(self.group):
            if point.name in found:
                continue  # a built-in name stays the built-in kind: a plugin cannot take it over
            dist = getattr(point, "dist", None)
            where = f"{dist.name} {dist.version}" if dist is not None else point.value
            found[point.name] = (point.value, where)
        return found


@functools.cache
def _entry_points(group: str) -> tuple[metadata.EntryPoint, ...]:
    return tuple(metadata.entry_points(group=group))


SOURCES: Registry[type[SourceSettings]] = Registry(
    "paper_digest.sources",
    {
        "hf-api": "digest.sources.hf_api:HfApiSource",
        "page": "digest.sources.page:PageSource",
        "feed": "digest.sources.feed:FeedSource",
    },
)

CHANNELS: Registry[ChannelKind] = Registry(
    "paper_digest.channels",
    {
        "file": "digest.deliver.files:FileChannel",
        "maildir": "digest.deliver.files:MaildirChannel",
        "smtp": "digest.deliver.smtp:SmtpChannel",
        "atom": "digest.deliver.atom:AtomChannel",
        "webhook": "digest.deliver.webhook:WebhookChannel",
    },
)

STORES: Registry[StoreBackend] = Registry(
    "paper_digest.stores",
    {
        "sqlite": "digest.store.sqlite:SqliteStore",
        "postgresql": "digest.store.postgres:PostgresStore",
    },
)

MATCHERS: Registry[MatcherFactory] = Registry(
    "paper_digest.matchers",
    {
        "keywords": "digest.match.keywords:keyword_layer",
        "semantic": "digest.match.semantic:semantic_layer",
        "profile": "digest.match.profile:profile_layer",
    },
)


def load(table: Registry[T], name: str) -> T:
    """``table.load(name)``: the object registered under ``name``."""
    return table.load(name)


def everything() -> dict[str, Registry[Any]]:
    """Every registry by seam, for ``digest check``'s list of kinds."""
    return {"sources": SOURCES, "channels": CHANNELS, "stores": STORES, "matchers": MATCHERS}
