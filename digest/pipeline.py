"""The one place where the stages are wired: ``run()`` (fetch → deliver → record) and ``preview()``.

Every collaborator that does I/O (HTTP client, store, channel, clock) is passed in, so the CLI,
the daemon and the tests all drive the same code with real or local parts. What each stage
takes of the configuration is made in :mod:`digest.stage_settings`: no stage reads the
configuration itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Config
from digest.deliver import Channel, Outgoing
from digest.errors import RenderError, StoreError, UsageError
from digest.models import Batch, Rendered, Subscriber
from digest.plan import Plan, make_plan, retention
from digest.render import Renderer
from digest.render.preview import write_preview
from digest.report import RunReport, SubscriberOutcome
from digest.roster import Roster, make_roster
from digest.send import Sending
from digest.settings import SourceSettings
from digest.sources import Source, read_sources
from digest.stage_settings import read_context, render_settings
from digest.store import PlannedDigest, Store
from digest.store.journal import Journal, reconcile

if TYPE_CHECKING:
    import httpx

Progress = Callable[[int, int], None]


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


def plan_run(
    config: Config,
    *,
    client: httpx.Client,
    store: Store,
    now: dt.datetime,
    day: dt.date,
    record: bool,
    only: str | None = None,
    any_day: bool = False,
) -> tuple[Roster, Plan]:
    """Who the run is for (see :func:`_roster`) and what it sends them: the sources read, the
    store consulted (and, with ``record``, told what was seen), every due subscriber matched."""
    roster = _roster(config, store, now=now, day=day, only=only, any_day=any_day)
    batch = collect(config, client=client, day=day)
    plan = make_plan(
        roster.due,
        batch,
        store=store,
        now=now,
        lookback_days=config.digest.lookback_days,
        record=record,
        windows=roster.windows,
    )
    return roster, plan


def _roster(
    config: Config,
    store: Store,
    *,
    now: dt.datetime,
    day: dt.date,
    only: str | None = None,
    any_day: bool = False,
) -> Roster:
    """Who this run is for: everyone, or the one subscriber ``only`` names (UsageError when the
    config has no such subscriber)."""
    subscribers: Sequence[Subscriber] = config.subscriber_list
    if only is not None:
        subscribers = [s for s in subscribers if s.address == only.strip().lower()]
        if not subscribers:
            raise UsageError(
                f"no subscriber {only!r} in the config",
                where=str(config.path),
                hint="see them with `digest subscribers list`",
            )
    states = store.subscriber_states([s.email for s in subscribers])
    return make_roster(
        subscribers,
        states,
        now=now,
        day=day,
        lookback_days=config.digest.lookback_days,
        any_day=any_day or only is not None,
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
    suspended: Sequence[str] = (),
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
        suspended=tuple(suspended),
    )


def _render(renderer: Renderer, subscriber: Subscriber, plan: Plan, day: dt.date) -> Rendered:
    return renderer.render(
        subscriber,
        plan.matches[subscriber.email],
        day=day,
        new_count=plan.new_count(subscriber.email),
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
    only: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
) -> RunReport:
    """One full cycle. ``dry_run`` (or ``channel=None``) sends nothing and changes nothing;
    ``only`` sends just that subscriber's digest (due whatever their cadence).

    What earlier runs sent but could not record is recorded first (the journal); then the plan
    is recorded, every digest pending, before the first is sent (see :mod:`digest.send`).
    """
    dry_run = dry_run or channel is None
    run_id = 0
    if not dry_run:
        run_id = store.begin_run(now)
        reconcile(store, store.journal_path, run_id, now)
    roster, plan = plan_run(
        config, client=client, store=store, now=now, day=day, record=not dry_run, only=only
    )
    renderer = Renderer(render_settings(config))
    send_empty = config.digest.send_empty
    due = [s for s in roster.due if plan.matched[s.email] or send_empty]
    outcomes = [
        *roster.waiting,
        *(
            SubscriberOutcome(s.email, 0, skipped="no new papers", kind="empty")
            for s in roster.due
            if not (plan.matched[s.email] or send_empty)
        ),
    ]
    if dry_run or channel is None:
        outcomes += [_rehearse(renderer, s, plan, day) for s in due]
        return _report(plan, day, _in_order(config, outcomes), dry_run=True)
    journal = Journal.open(store.journal_path, len(due))
    bounces = config.delivery.suspend_after_bounces
    sending = Sending(store, channel, journal, run_id, now, suspend_after=bounces or None)
    stopped = False
    try:
        planned = [
            PlannedDigest(s.email, _keys(plan, s), tuple(plan.passed_over[s.email])) for s in due
        ]
        opened = store.plan_digests(run_id, day, planned, now)
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
        _in_order(config, [*outcomes, *sending.outcomes]),
        dry_run=False,
        stopped=stopped,
        unrecorded=sending.unrecorded,
        store_problem=sending.store_problem,
        suspended=sending.suspended,
    )
    # The summary is printed anyway, and the run's sends are recorded or journaled; what can no
    # longer matter is pruned so the store stays the size of its window.
    with contextlib.suppress(StoreError):
        store.finish_run(run_id, now, "\n".join(report.summary()))
        store.prune(now, retention(config.digest.lookback_days))
    return report


def _in_order(config: Config, outcomes: Sequence[SubscriberOutcome]) -> list[SubscriberOutcome]:
    """Outcomes in the config's order of subscribers (the summary lists them so)."""
    position = {s.email: n for n, s in enumerate(config.subscriber_list)}
    return sorted(outcomes, key=lambda o: position.get(o.email, len(position)))


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
    """The files a preview wrote, the emails in them, and the run report it corresponds to."""

    paths: list[Path]
    report: RunReport
    emails: list[tuple[Subscriber, Rendered]]


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
    """Render each subscriber's email into ``out_dir``; never sends, never changes the store.

    Planned as the run plans, so it shows what the run would send; a weekly digest not due
    today is shown as it stands (the week so far), and who left or is suspended is left out.
    """
    roster, plan = plan_run(
        config, client=client, store=store, now=now, day=day, record=False, only=only, any_day=True
    )
    renderer = Renderer(render_settings(config))
    items: list[tuple[Subscriber, Rendered]] = []
    outcomes: list[SubscriberOutcome] = list(roster.waiting)
    for subscriber in roster.due:
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
    report = _report(plan, day, _in_order(config, outcomes), dry_run=True)
    return PreviewResult(paths=paths, report=report, emails=items)


def send_test(
    channel: Channel, emails: Sequence[tuple[Subscriber, Rendered]], address: str, now: dt.datetime
) -> list[str]:
    """Send each previewed email to ``address``, its subject marked ``[test]``; the receipts.
    The ledger is not involved: nothing is recorded, nothing is owed."""
    receipts = []
    for subscriber, rendered in emails:
        test = rendered.model_copy(update={"subject": f"[test] {rendered.subject}"})
        recipient = Subscriber(email=address, name=subscriber.name)
        receipts.append(
            channel.send(Outgoing(subscriber=recipient, rendered=test, day=now.date(), now=now))
        )
    channel.flush()
    return receipts
