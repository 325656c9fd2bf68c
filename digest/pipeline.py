"""The one place where the stages are wired: ``run()`` (fetch → deliver → record) and ``preview()``.

Every collaborator that does I/O (HTTP client, store, channel, clock) is passed in, so the CLI,
the daemon and the tests all drive the same code with real or local parts. The functions that
turn the configuration into what each stage takes (:func:`read_context`, :func:`render_settings`,
:func:`channel_context`) live here too: no stage reads the configuration itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Config, channel_options
from digest.deliver import Channel, ChannelContext, MessageSettings, Outgoing, open_channel
from digest.errors import DeliveryError, PermanentDeliveryError, UsageError
from digest.models import Batch, Rendered, Subscriber
from digest.plan import Plan, make_plan
from digest.render import Renderer, RenderSettings
from digest.render.preview import write_preview
from digest.report import RunReport, SubscriberOutcome
from digest.settings import SourceSettings
from digest.sources import Limits, ReadContext, Source, read_sources
from digest.sources.local import read_regular_file
from digest.store import Store

if TYPE_CHECKING:
    import httpx

Progress = Callable[[int, int], None]


# --- the configuration, as each stage takes it ---------------------------------------------------


def read_context(config: Config, *, client: httpx.Client, day: dt.date) -> ReadContext:
    """How sources read: the day, HTTP through ``client`` with ``[fetch]``'s patience, files."""
    from digest.sources.fetch import get  # httpx: only commands that read sources load it

    fetch = config.fetch
    limits = Limits(fetch.max_bytes, fetch.max_entries, fetch.max_json_depth)
    download = partial(
        get,
        client,
        retries=fetch.retries,
        backoff=fetch.backoff,
        deadline=fetch.deadline,
        max_bytes=limits.max_bytes,
    )
    return ReadContext(
        today=day,
        download=download,
        read_file=partial(read_regular_file, max_bytes=limits.max_bytes),
        resolve=config.resolve,
        limits=limits,
        lookback_days=config.digest.lookback_days,
    )


def render_settings(config: Config) -> RenderSettings:
    """What the renderer needs of ``[digest]`` and ``[delivery]``."""
    digest, delivery = config.digest, config.delivery
    return RenderSettings(
        title=digest.title,
        max_html_bytes=digest.max_html_bytes,
        templates=config.resolve(digest.templates) if digest.templates else None,
        unsubscribe_url=delivery.unsubscribe_url,
        manage_url=delivery.manage_url,
        unsubscribe_mailto=delivery.unsubscribe_mailto,
    )


def message_settings(config: Config) -> MessageSettings:
    """The headers every message carries."""
    delivery = config.delivery
    return MessageSettings(
        sender=delivery.sender,
        title=config.digest.title,
        reply_to=delivery.reply_to,
        list_id=delivery.list_id,
        unsubscribe_mailto=delivery.unsubscribe_mailto,
        unsubscribe_url=delivery.unsubscribe_url,
    )


def channel_context(config: Config, **overrides: object) -> ChannelContext:
    """What opening the configured channel needs; ``overrides`` replace fields (tests)."""
    context = ChannelContext(message=message_settings(config), resolve=config.resolve)
    return context if not overrides else ChannelContext(**{**context.__dict__, **overrides})


def open_configured_channel(config: Config, **overrides: object) -> Channel:
    """The channel ``[delivery] method`` names, opened on its settings."""
    method = config.delivery.method
    settings = config.delivery.option(channel_options()[method].key)
    return open_channel(method, settings, channel_context(config, **overrides))


# --- the stages, wired ---------------------------------------------------------------------------


def collect(
    config: Config,
    *,
    client: httpx.Client,
    day: dt.date,
    sources: Sequence[SourceSettings] | None = None,
) -> Batch:
    """Read the configured sources (or ``sources``), de-duplicated within the batch."""
    chosen: Sequence[Source] = config.sources if sources is None else sources  # type: ignore[assignment]
    context = read_context(config, client=client, day=day)
    return read_sources(chosen, context, concurrency=config.fetch.concurrency)


def _plan(
    config: Config,
    subscribers: Sequence[Subscriber],
    *,
    client: httpx.Client,
    store: Store,
    now: dt.datetime,
    day: dt.date,
    record: bool,
) -> Plan:
    batch = collect(config, client=client, day=day)
    return make_plan(
        subscribers,
        batch,
        store=store,
        now=now,
        lookback_days=config.digest.lookback_days,
        record=record,
    )


def _report(
    plan: Plan,
    day: dt.date,
    outcomes: Sequence[SubscriberOutcome],
    *,
    dry_run: bool,
    stopped: bool = False,
) -> RunReport:
    return RunReport(
        day=day,
        entries=plan.batch.entries,
        papers=len(plan.batch.papers),
        new=len(plan.new),
        failures=plan.batch.failures,
        skipped_entries=plan.batch.skipped,
        outcomes=tuple(outcomes),
        dry_run=dry_run,
        stopped=stopped,
    )


def _render(renderer: Renderer, subscriber: Subscriber, plan: Plan, day: dt.date) -> Rendered:
    return renderer.render(
        subscriber,
        plan.matches[subscriber.email],
        day=day,
        new_count=len(plan.new),
        matched_count=plan.matched[subscriber.email],
    )


def run(
    config: Config,
    *,
    client: httpx.Client,
    store: Store,
    channel: Channel | None,
    now: dt.datetime,
    day: dt.date,
    dry_run: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
) -> RunReport:
    """One full cycle. ``dry_run`` (or ``channel=None``) sends nothing and changes nothing.

    Each subscriber's papers are marked pending before the send and sent only once the channel
    has accepted the digest, so a crash at any point loses nothing: at worst the one digest in
    flight is sent again next run.
    """
    dry_run = dry_run or channel is None
    subscribers = config.subscriber_list
    plan = _plan(
        config, subscribers, client=client, store=store, now=now, day=day, record=not dry_run
    )
    renderer = Renderer(render_settings(config))
    run_id = None if dry_run else store.begin_run(now)
    outcomes: list[SubscriberOutcome] = []
    stopped = False
    for done, subscriber in enumerate(subscribers, start=1):
        if should_stop():
            stopped = True
            break
        if progress is not None:
            progress(done, len(subscribers))
        matched = plan.matched[subscriber.email]
        if matched == 0 and not config.digest.send_empty:
            outcomes.append(SubscriberOutcome(subscriber.email, 0, skipped="no new papers"))
            continue
        rendered = _render(renderer, subscriber, plan, day)
        outcome = SubscriberOutcome(subscriber.email, matched, len(rendered.paper_keys), sent=True)
        if channel is not None and run_id is not None:
            outcome = _deliver(store, channel, run_id, subscriber, rendered, plan, day, now)
        outcomes.append(outcome)
    report = _report(plan, day, outcomes, dry_run=dry_run, stopped=stopped)
    if run_id is not None:
        store.finish_run(run_id, now, "\n".join(report.summary()))
    return report


def _deliver(
    store: Store,
    channel: Channel,
    run_id: int,
    subscriber: Subscriber,
    rendered: Rendered,
    plan: Plan,
    day: dt.date,
    now: dt.datetime,
) -> SubscriberOutcome:
    """Send one digest and record the outcome in the ledger."""
    email = subscriber.email
    keys = list(rendered.paper_keys)
    listed = {key: match for match in plan.matches[email] for key in (match.paper.key,)}
    outgoing = Outgoing(
        subscriber=subscriber,
        rendered=rendered,
        day=day,
        now=now,
        digest_id=digest_id(subscriber, day),
        matches=tuple(listed[key] for key in keys if key in listed),
    )
    matched = plan.matched[email]
    try:
        store.mark_pending(run_id, email, keys, now)
        receipt = channel.send(outgoing)
    except DeliveryError as exc:
        store.mark_failed(run_id, email, keys, str(exc), now)
        permanent = isinstance(exc, PermanentDeliveryError)
        return SubscriberOutcome(email, matched, len(keys), error=str(exc), permanent=permanent)
    store.mark_sent(run_id, email, keys, receipt, now, passed_over=plan.passed_over[email])
    return SubscriberOutcome(email, matched, len(keys), sent=True)


def digest_id(subscriber: Subscriber, day: dt.date) -> str:
    """The stable name of ``subscriber``'s digest of ``day``: a resend carries the same one."""
    tag = hashlib.sha256(subscriber.address.encode("utf-8")).hexdigest()[:12]
    return f"{day:%Y%m%d}.{tag}"


@dataclass(frozen=True)
class PreviewResult:
    """The files a preview wrote, and the run report it would correspond to."""

    paths: list[Path]
    report: RunReport


def preview(
    config: Config,
    *,
    client: httpx.Client,
    store: Store,
    now: dt.datetime,
    day: dt.date,
    out_dir: Path,
    only: str | None = None,
) -> PreviewResult:
    """Render each subscriber's email into ``out_dir``; never sends, never changes the store."""
    everyone = config.subscriber_list
    chosen = [s for s in everyone if only is None or s.email.casefold() == only.casefold()]
    if not chosen:
        raise UsageError(
            f"no subscriber {only!r} in the config",
            where=str(config.path),
            hint="list them with `digest check`; or drop --subscriber to preview everyone",
        )
    plan = _plan(config, everyone, client=client, store=store, now=now, day=day, record=False)
    renderer = Renderer(render_settings(config))
    items = [(s, _render(renderer, s, plan, day)) for s in chosen]
    paths = write_preview(out_dir, items)
    outcomes = tuple(
        SubscriberOutcome(s.email, plan.matched[s.email], len(r.paper_keys), sent=True)
        for s, r in items
    )
    return PreviewResult(paths=paths, report=_report(plan, day, outcomes, dry_run=True))
