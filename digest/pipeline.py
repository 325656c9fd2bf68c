"""The one place where the stages are wired: ``run()`` (fetch → deliver → record) and ``preview()``.

Every collaborator that does I/O (HTTP client, store, channel, clock) is passed in, so the CLI,
the daemon and the tests all drive the same code with real or local parts. The functions that
turn the configuration into what each stage takes (:func:`read_context`, :func:`render_settings`,
:func:`channel_context`) live here too: no stage reads the configuration itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Config, channel_options
from digest.deliver import Channel, ChannelContext, MessageSettings, open_channel
from digest.errors import RenderError, StoreError, UsageError
from digest.models import Batch, Rendered, Subscriber
from digest.plan import Plan, make_plan, retention
from digest.render import Renderer, RenderSettings
from digest.render.preview import write_preview
from digest.report import RunReport, SubscriberOutcome
from digest.send import Sending
from digest.settings import SourceSettings
from digest.sources import Limits, ReadContext, Source, read_sources
from digest.sources.local import read_regular_file
from digest.store import PlannedDigest, Store
from digest.store.journal import Journal, reconcile

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
    unrecorded: int = 0,
    store_problem: str | None = None,
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
        unrecorded=unrecorded,
        store_problem=store_problem,
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

    What earlier runs sent but could not record is recorded first (the journal); then the plan
    is recorded, every digest pending, before the first is sent (see :mod:`digest.send`).
    """
    dry_run = dry_run or channel is None
    subscribers = config.subscriber_list
    run_id = 0
    if not dry_run:
        run_id = store.begin_run(now)
        reconcile(store, store.journal_path, run_id, now)
    plan = _plan(
        config, subscribers, client=client, store=store, now=now, day=day, record=not dry_run
    )
    renderer = Renderer(render_settings(config))
    due = [s for s in subscribers if plan.matched[s.email] or config.digest.send_empty]
    outcomes = [
        SubscriberOutcome(s.email, 0, skipped="no new papers")
        for s in subscribers
        if not (plan.matched[s.email] or config.digest.send_empty)
    ]
    if dry_run or channel is None:
        outcomes += [_rehearse(renderer, s, plan, day) for s in due]
        return _report(plan, day, outcomes, dry_run=True)
    journal = Journal.open(store.journal_path, len(due))
    sending = Sending(store, channel, journal, run_id, now)
    try:
        planned = [
            PlannedDigest(s.email, _keys(plan, s), tuple(plan.passed_over[s.email])) for s in due
        ]
        opened = store.plan_digests(run_id, day, planned, now)
        stopped = False
        for done, (subscriber, digest) in enumerate(zip(due, opened, strict=True), start=1):
            if should_stop():
                stopped = True  # what is left stays pending: owed to the next run
                break
            if progress is not None:
                progress(done, len(due))
            sending.send(
                subscriber,
                digest,
                lambda s: _render(renderer, s, plan, day),
                plan.matches[subscriber.email],
                matched=plan.matched[subscriber.email],
                day=day,
            )
        sending.finish()
    except BaseException:
        sending.abandon()
        journal.close(recorded=False)  # kept: the next run records what it holds
        raise
    report = _report(
        plan,
        day,
        [*outcomes, *sending.outcomes],
        dry_run=False,
        stopped=stopped,
        unrecorded=sending.unrecorded,
        store_problem=sending.store_problem,
    )
    # The summary is printed anyway, and the run's sends are recorded or journaled; what can no
    # longer matter is pruned so the store stays the size of its window.
    with contextlib.suppress(StoreError):
        store.finish_run(run_id, now, "\n".join(report.summary()))
        store.prune(now, retention(config.digest.lookback_days))
    return report


def _keys(plan: Plan, subscriber: Subscriber) -> tuple[str, ...]:
    return tuple(match.paper.key for match in plan.matches[subscriber.email])


def _rehearse(
    renderer: Renderer, subscriber: Subscriber, plan: Plan, day: dt.date
) -> SubscriberOutcome:
    """What a dry run reports for one subscriber: the email renders, and would be sent."""
    matched = plan.matched[subscriber.email]
    try:
        rendered = _render(renderer, subscriber, plan, day)
    except RenderError as exc:
        return SubscriberOutcome(subscriber.email, matched, error=str(exc), permanent=True)
    return SubscriberOutcome(subscriber.email, matched, len(rendered.paper_keys), sent=True)


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
    items: list[tuple[Subscriber, Rendered]] = []
    outcomes: list[SubscriberOutcome] = []
    for subscriber in chosen:
        matched = plan.matched[subscriber.email]
        try:
            rendered = _render(renderer, subscriber, plan, day)
        except RenderError as exc:
            outcomes.append(
                SubscriberOutcome(subscriber.email, matched, error=str(exc), permanent=True)
            )
            continue
        items.append((subscriber, rendered))
        outcomes.append(
            SubscriberOutcome(subscriber.email, matched, len(rendered.paper_keys), sent=True)
        )
    paths = write_preview(out_dir, items)
    return PreviewResult(paths=paths, report=_report(plan, day, outcomes, dry_run=True))
