"""``digest check``: everything that can be known wrong before the first real run, said once.

Beyond the schema (:mod:`digest.config`): every subscriber's interests compile, the templates
render a small built-in digest, each local source names files that exist, the store can be read,
and the channel's settings are complete (the SMTP password variable set where a login needs
it). Problems that stop a run raise a ``ConfigError`` (exit 2); those that only may (nobody
subscribed, no way to unsubscribe from mail) are warnings. With ``--smtp`` and ``--sources`` the
mail server and the API are asked, once each, and what they answered is said before the one
verdict at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from digest.config import Config, channel_options
from digest.errors import ConfigError, RenderError, SourceError, UsageError
from digest.models import Match, Paper, Subscriber

if TYPE_CHECKING:
    import httpx

    from digest.store import Store

SHOWN_SUBSCRIBERS = 5
MAIL_METHODS = frozenset({"smtp", "file", "maildir"})  # channels whose messages need a way out
LARGEST_CHECKED = 20  # subscribers whose own part of an email is rendered by check


@dataclass
class CheckReport:
    """What ``check`` found: lines to print, and warnings."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    feedback: str | None = None  # readers' verdicts, when any were given


def check_config(
    config: Config,
    *,
    open_store: Callable[[], Store],
    env: Mapping[str, str],
) -> CheckReport:
    """Check ``config`` beyond its schema, reading the store ``open_store`` opens (read-only)
    and the environment ``env``; raises ConfigError (or StoreError) on what blocks."""
    from digest.match import compile_interests

    report = CheckReport()
    compile_interests(config.subscriber_list)
    check_templates(config)
    _check_sources(config)
    store_line = _store_summary(config, report, open_store)
    target = _channel_target(config, env)
    subscribers = config.subscriber_list
    report.lines.append(f"{config.path}:")
    report.lines.append(f"  sources ({len(config.sources)}):")
    report.lines += [f"    {source.kind}: {source.label}" for source in config.sources]
    shown = ", ".join(s.email for s in subscribers[:SHOWN_SUBSCRIBERS])
    more = f" and {len(subscribers) - SHOWN_SUBSCRIBERS} more" if len(subscribers) > 5 else ""
    report.lines.append(f"  subscribers ({len(subscribers)}): {shown or '-'}{more}")
    report.lines.append(f"  store: {store_line}")
    if report.feedback:
        report.lines.append(f"  feedback: {report.feedback}")
    report.lines.append(f"  delivery: {config.delivery.method} -> {target}")
    if config.delivery.method in MAIL_METHODS:
        report.lines.append(f"  unsubscribe: {_unsubscribe_ways(config, report)}")
    report.lines += _kinds()
    weekly = sum(1 for s in subscribers if s.weekly)
    monthly = sum(1 for s in subscribers if s.monthly)
    if weekly or monthly:
        daily = len(subscribers) - weekly - monthly
        report.lines.append(
            f"  cadence: {daily} daily, {weekly} weekly"
            + (f", {monthly} monthly" if monthly else "")
        )
    if not subscribers:
        report.warnings.append("nobody is subscribed: add a [[subscribers]] entry")
    report.warnings += _old_closeness_scale(subscribers)
    report.warnings += _topicless_descriptions(subscribers)
    return report


def _topicless_descriptions(subscribers: Sequence[Subscriber]) -> list[str]:
    """A warning per ``about`` text made of filler alone ("papers about", "my research"): it
    is embedded as written and lands near every paper and none (the first few, then how many
    more)."""
    from digest.match.embedding import topic_words

    found = [
        f"{s.email}: about {about!r} names no topic; write what the papers are about "
        '(e.g. "robot grasping with tactile sensors")'
        for s in subscribers
        for about in s.about
        if not topic_words(about)
    ]
    return _first_few(found, "about texts that name no topic")


OLD_SCALE_BELOW = 0.8  # a share this low picks a fifth of all papers: a cosine of the old scale


def _old_closeness_scale(subscribers: Sequence[Subscriber]) -> list[str]:
    """A warning per reader whose min_similarity looks like a cosine of the old scale (the
    first few, then how many more)."""
    found = [
        f"{s.email}: min_similarity = {s.min_similarity} is the share of recent papers a paper "
        f"must be closer than (it was a cosine): {s.min_similarity} picks about "
        f"{1 - s.min_similarity:.0%} of all papers; the default is 0.975, 0.99 picks fewer"
        for s in subscribers
        if (s.about or s.like)
        and s.min_similarity is not None
        and s.min_similarity < OLD_SCALE_BELOW
    ]
    return _first_few(found, "readers set min_similarity so low")


def _first_few(warnings: list[str], rest: str) -> list[str]:
    """The first few ``warnings``, then one line saying how many more there are of ``rest``."""
    if len(warnings) <= SHOWN_SUBSCRIBERS:
        return warnings
    more = len(warnings) - SHOWN_SUBSCRIBERS
    return [*warnings[:SHOWN_SUBSCRIBERS], f"and {more} more {rest}"]


def _kinds() -> list[str]:
    """The kinds each seam knows, and where those that are not built in come from."""
    from digest.registry import BUILT_IN, everything

    lines = []
    for seam, table in everything().items():
        names = []
        for name in table:
            origin = table.origin(name)
            names.append(name if origin == BUILT_IN else f"{name} (plugin {origin})")
        lines.append(f"  {seam}: {', '.join(names)}")
    return ["  kinds known:", *(f"  {line}" for line in lines)]


def _unsubscribe_ways(config: Config, report: CheckReport) -> str:
    """The ways out a message offers (ConfigError when the links' secret is missing)."""
    from digest.stage_settings import unsubscribe_links

    delivery = config.delivery
    ways = []
    if unsubscribe_links(config) is not None:
        ways.append(f"one-click pages at {config.server.base_url} (run `digest serve`)")
    if delivery.unsubscribe_url:
        ways.append(f"your page {delivery.unsubscribe_url}")
    if delivery.unsubscribe_mailto:
        ways.append(delivery.unsubscribe_mailto)
    if not ways:
        report.warnings.append(
            "messages offer no way to unsubscribe: set [server] base_url (and run `digest "
            "serve`) or [delivery] unsubscribe_mailto; Gmail and Yahoo require one-click "
            "unsubscribe of bulk senders"
        )
        return "none"
    return "; ".join(ways)


def check_templates(config: Config) -> None:
    """Render the configured templates on a built-in digest (no CSS inlining needed for that)."""
    from digest.render import Renderer
    from digest.stage_settings import render_settings

    renderer = Renderer(render_settings(config), inline=False)
    paper = Paper(
        arxiv_id="2401.00001",
        title="A sample paper to check the templates",
        abstract="It has an abstract. It matched a keyword.",
        authors=("Ada Lovelace", "Grace Hopper"),
        upvotes=3,
        published=dt.date(2024, 1, 1),
    )
    match = Match(paper=paper, keywords=("sample",), score=1.0)
    sample = Subscriber(email="check@example.org", name="Check", keywords=("sample",))
    day = dt.date(2024, 1, 1)
    renderer.render(sample, [match], day=day, new_count=1, matched_count=1)
    renderer.render(sample, [], day=day, new_count=0, matched_count=0)
    # The subscribers with the most of their own in an email (name, interests): if even an
    # email of one paper cannot carry them, `run` would fail them every morning.
    own = sorted(config.subscriber_list, key=_own_size, reverse=True)[:LARGEST_CHECKED]
    for subscriber in own:
        try:
            renderer.render(subscriber, [match], day=day, new_count=1, matched_count=1)
        except RenderError as exc:
            raise ConfigError(exc.message, where=str(config.path), hint=exc.hint) from exc


def _own_size(subscriber: Subscriber) -> int:
    terms = (*subscriber.keywords, *subscriber.require, *subscriber.exclude,
             *subscriber.authors, *subscriber.organizations)  # fmt: skip
    return len(subscriber.name) + len(subscriber.email) + sum(len(t) + 2 for t in terms)


def _check_sources(config: Config) -> None:
    from digest.sources.local import expand

    for index, source in enumerate(config.sources):
        path = getattr(source, "path", None)
        if path is None:
            continue
        try:
            for found in expand(config.resolve(path), source.label):
                if not found.exists():
                    raise SourceError("no such file", where=str(found))
        except SourceError as exc:
            raise ConfigError(
                f"sources[{index}].path: {exc.message} ({exc.where})",
                where=str(config.path),
                hint=exc.hint or "check the path (relative paths start at the config's folder)",
            ) from exc


def _store_summary(config: Config, report: CheckReport, open_store: Callable[[], Store]) -> str:
    """Which backend, where, that it answers, its schema version, and what it holds; a warning
    for each liked paper the store does not know (it cannot be compared with until a source
    brings it)."""
    from digest.identity import arxiv_id
    from digest.likes import liked_papers
    from digest.store import scheme_of

    at_hand = _local_papers(config) if any(s.like for s in config.subscriber_list) else []
    with open_store() as store:
        stats = store.stats()
        known = liked_papers(config.subscriber_list, at_hand, store)
        given = store.verdicts([s.email for s in config.subscriber_list])
    report.feedback = _feedback_summary(given, report)
    for subscriber in config.subscriber_list:
        unknown = [raw for raw in subscriber.like if (arxiv_id(raw) or raw.strip()) not in known]
        if unknown:
            report.warnings.append(
                f"{subscriber.email}: liked papers not known yet: {', '.join(unknown)} "
                "(the next run online fetches them from [fetch] paper_api; until then they are "
                "left out)"
            )
    upgrade = " (upgraded by the next run)" if stats.schema_version < stats.latest_schema else ""
    kind, where = scheme_of(store.location), store.location
    return (
        f"{kind} {where}: reachable, schema {stats.schema_version} of {stats.latest_schema}"
        f"{upgrade}, {stats.papers} papers seen"
    )


def _feedback_summary(given: Mapping[str, Mapping[str, int]], report: CheckReport) -> str | None:
    """How many readers gave verdicts (None: nobody), with a warning when their profiles
    cannot be used here."""
    if not given:
        return None
    from digest.match import embedding

    count = sum(len(found) for found in given.values())
    if not embedding.installed():
        report.warnings.append(
            f"{len(given)} readers gave verdicts, which are kept but not used without the "
            "semantic extra: pip install 'paper-digest[semantic]'"
        )
    readers = f"{len(given)} reader" + ("" if len(given) == 1 else "s")
    verdicts = f"{count} verdict" + ("" if count == 1 else "s")
    return f"{verdicts} from {readers} (their profiles rank their digests)"


def _local_papers(config: Config) -> list[Paper]:
    """The papers today's local sources (files, globs) carry; nothing is fetched."""
    from digest.sources import ReadContext, read_sources
    from digest.sources.local import read_regular_file

    local = [s for s in config.sources if getattr(s, "path", None) is not None]

    def no_network(url: str) -> bytes:
        raise SourceError("check reads local sources only", where=url)

    context = ReadContext(
        today=dt.date.today(),
        download=no_network,
        read_file=lambda path: read_regular_file(path, config.fetch.max_bytes),
        resolve=config.resolve,
    )
    return list(read_sources(local, context).papers)  # type: ignore[arg-type]


def _channel_target(config: Config, env: Mapping[str, str]) -> str:
    """Where the channel delivers; ConfigError when its settings cannot work as they stand (the
    SMTP password variable unset while a username asks for a login)."""
    from digest.deliver import target_of
    from digest.stage_settings import channel_context

    delivery = config.delivery
    settings = delivery.option(channel_options()[delivery.method].key)
    password_env = getattr(settings, "password_env", None)
    if getattr(settings, "username", None) and password_env and not env.get(password_env):
        raise ConfigError(
            f"delivery.smtp.password_env: ${password_env} is not set, so the SMTP login of "
            f"{settings.username!r} fails",
            where=str(config.path),
            hint=f"export {password_env}=... (or EnvironmentFile= in systemd), or remove username",
        )
    return target_of(delivery.method, settings, channel_context(config))


def check_smtp(config: Config) -> list[str]:
    """Open a session with ``[delivery.smtp]`` (TLS, login), quit, and say what the server
    answered; sends nothing. UsageError without such a table, DeliveryError when it fails."""
    from digest.deliver.smtp import smtp_transport
    from digest.stage_settings import channel_context

    smtp = config.delivery.option("smtp")
    if smtp is None:
        raise UsageError(
            "--smtp checks [delivery.smtp], and the config has none",
            where=str(config.path),
            hint="add a [delivery.smtp] table (`digest init --print` shows one)",
        )
    return smtp_transport(smtp, channel_context(config)).probe()


def check_api_sources(config: Config, client: httpx.Client) -> list[str]:
    """Ask each ``hf-api`` source, through ``client``, for one entry of today, as a run would ask
    (deadline, retries, size cap); what each answered. SourceError when one does not answer as
    an API."""
    import json

    from digest.sources.fetch import get

    lines: list[str] = []
    fetch = config.fetch
    for source in config.sources:
        url = getattr(source, "api_url", None)
        if source.kind != "hf-api" or url is None:
            continue
        probe = f"{url}{'&' if '?' in url else '?'}limit=1"
        body = get(client, probe, retries=0, backoff=0, deadline=fetch.deadline)
        try:
            entries = json.loads(body)
        except ValueError as exc:
            raise SourceError("answers, but not with JSON", where=probe) from exc
        if not isinstance(entries, list):
            raise SourceError("answers, but not with a list of entries", where=probe)
        lines.append(f"  source {source.label}: answers ({len(entries)} entry for limit=1)")
    return lines
