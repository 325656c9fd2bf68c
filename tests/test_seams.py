"""Every registered implementation, built-in or the example plugin, is its seam's Protocol: the
assignments below are what `mypy --strict` checks (CI runs it over `tests/` too); at run time,
every registry entry loads and is the object named here."""

from __future__ import annotations

import sys
from pathlib import Path

from digest import registry
from digest.deliver import ChannelKind
from digest.deliver.atom import AtomChannel
from digest.deliver.files import FileChannel, MaildirChannel
from digest.deliver.smtp import SmtpChannel
from digest.deliver.webhook import WebhookChannel
from digest.dispatch import DispatchStore
from digest.likes import LikedPaperStore
from digest.match import Matcher, MatcherFactory
from digest.match.keywords import KeywordMatcher, keyword_layer
from digest.match.profile import ProfileMatcher, profile_layer
from digest.match.semantic import SemanticMatcher, semantic_layer
from digest.plan import PlanningStore
from digest.settings import SourceSettings
from digest.sources import Source
from digest.sources.feed import FeedSource
from digest.sources.hf_api import HfApiSource
from digest.sources.page import PageSource
from digest.store import Store, StoreBackend
from digest.store.postgres import PostgresStore
from digest.store.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "jsonl-source"))
from paper_digest_jsonl import JsonlSource

SOURCE_KINDS: dict[str, type[SourceSettings]] = {
    "hf-api": HfApiSource,
    "page": PageSource,
    "feed": FeedSource,
}
CHANNEL_KINDS: dict[str, ChannelKind] = {
    "file": FileChannel,
    "maildir": MaildirChannel,
    "smtp": SmtpChannel,
    "atom": AtomChannel,
    "webhook": WebhookChannel,
}
STORE_BACKENDS: dict[str, StoreBackend] = {"sqlite": SqliteStore, "postgresql": PostgresStore}
MATCHER_FACTORIES: dict[str, MatcherFactory] = {
    "keywords": keyword_layer,
    "semantic": semantic_layer,
    "profile": profile_layer,
}


def matchers(a: KeywordMatcher, b: SemanticMatcher, c: ProfileMatcher) -> list[Matcher]:
    return [a, b, c]  # what each factory makes is a Matcher


def sources(a: HfApiSource, b: PageSource, c: FeedSource, d: JsonlSource) -> list[Source]:
    return [a, b, c, d]  # each settings model is a Source


def stores(a: SqliteStore, b: PostgresStore) -> list[Store]:
    return [a, b]  # each backend's store is a Store


def roles(store: Store) -> tuple[PlanningStore, DispatchStore, LikedPaperStore]:
    return store, store, store  # and so each narrower role the stages ask for


def test_every_registry_entry_loads_as_the_implementation_checked_here() -> None:
    for table, known in (
        (registry.SOURCES, SOURCE_KINDS),
        (registry.CHANNELS, CHANNEL_KINDS),
        (registry.STORES, STORE_BACKENDS),
        (registry.MATCHERS, MATCHER_FACTORIES),
    ):
        built_in = {name for name in table if table.origin(name) == registry.BUILT_IN}
        assert built_in == set(known)
        for name in built_in:
            assert table.load(name) is known[name]


def test_the_example_plugin_is_a_source_kind() -> None:
    kind: type[SourceSettings] = JsonlSource
    assert kind.model_fields["kind"].annotation is not None
