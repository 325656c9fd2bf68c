"""The registration lines: which module implements each source kind, channel, store and matcher.

A new implementation is one module plus one line here. Entries are ``"module:attribute"`` strings,
imported only when asked for, so ``digest --help`` pays for none of them and configuration can
name a kind without importing its implementation's dependencies (httpx, bs4, feedparser, ...).

- ``SOURCES``: ``[[sources]] kind`` -> the source's settings model (a
  :class:`digest.settings.Section` with ``kind: Literal[...]`` that implements
  :class:`digest.sources.Source`).
- ``CHANNELS``: ``[delivery] method`` -> the channel class (implements
  :class:`digest.deliver.ChannelKind`); its ``option`` is its key in ``[delivery]``.
- ``STORES``: the scheme of ``[digest] store`` (a bare path is ``sqlite``) -> the backend class
  (implements :class:`digest.store.Store`'s ``open``).
- ``MATCHERS``: name -> the matcher factory (implements :class:`digest.match.Matcher`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

SOURCES: Mapping[str, str] = {
    "hf-api": "digest.sources.hf_api:HfApiSource",
    "page": "digest.sources.page:PageSource",
    "feed": "digest.sources.feed:FeedSource",
}

CHANNELS: Mapping[str, str] = {
    "file": "digest.deliver.files:FileChannel",
    "maildir": "digest.deliver.files:MaildirChannel",
    "smtp": "digest.deliver.smtp:SmtpChannel",
    "atom": "digest.deliver.atom:AtomChannel",
}

STORES: Mapping[str, str] = {
    "sqlite": "digest.store.sqlite:SqliteStore",
    "postgresql": "digest.store.postgres:PostgresStore",
}

MATCHERS: Mapping[str, str] = {
    "keywords": "digest.match.keywords:compile_interests",
    "semantic": "digest.match.semantic:SemanticMatcher",
}


def load(table: Mapping[str, str], name: str) -> Any:
    """The object registered under ``name`` in ``table`` (KeyError when there is none)."""
    module, _, attribute = table[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
