"""The one place where the stages are wired: ``run()`` (fetch → deliver → record) and ``preview()``.

Every collaborator that does I/O (HTTP client, store, channel, clock) is passed in, so the CLI,
the daemon and the tests all drive the same code with real or local parts. What each stage
takes of the configuration is made in :mod:`digest.stage_settings`: no stage reads the
configuration itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Config
from digest.deliver import Channel, Outgoing, utc_now
from digest.dispatch import Claims, send_claimed, worker_name
from digest.errors import RenderError, StoreError
from digest.explain import source_note
from digest.likes import fetch_liked, liked_ids
from digest.models import Batch, Match, Rendered, Subscriber
from digest.plan import Plan, make_plan, retention
from digest.preferences import effective
from digest.render import Renderer
from digest.render.preview import write_preview
from digest.report import RunReport, SubscriberOutcome
from digest.roster import Roster, known_subscriber, make_roster
from digest.send import Sending
from digest.settings import SourceSettings
from digest.sources import FetchWatcher, Source, read_sources
from digest.stage_settings import read_context, render_settings
from digest.store import OpenDigest, PlannedDigest, Store, address_of
from digest.store.journal import Journal, reconcile
from digest.store.status_queue import StatusQueue

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
    watcher: FetchWatcher | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Batch:
    """Read the configured sources (or ``sources``), de-duplicated within the batch; stop
    waiting for them once ``cancelled()``."""
    chosen: Sequence[Source] = config.sources if sources is None else sources  # type: ignore[assignment]
    context = read_context(config, client=client, day=day, watcher=watcher, cancelled=cancelled)
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
    watcher: FetchWatcher | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[Roster, Plan]:
    """Who the run is for (see :func:`_roster`) and what it sends them: the sources read, the
    store consulted (and, with ``record``, told what was seen), every due subscriber matched."""
    roster = _roster(config, store, now=now, day=day, only=only, any_day=any_day)
    batch = collect(config, client=client, day=day, watcher=watcher, cancelled=should_stop)
    liked = None
    if liked_ids(roster.due):
        download = read_context(config, client=client, day=day).download
        liked = fetch_liked(roster.due, batch.papers, store, download=download,
                            base_url=config.fetch.paper_api, now=now)  # fmt: skip
    plan = make_plan(
        roster.due, batch, store=store, now=now, lookback_days=config.digest.lookback_days,
        record=record, windows=roster.windows, liked=liked, trending=config.digest.trending,
    )  # fmt: skip
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
    subscribers: Sequence[Subscriber] = readers(config, store)
    if only is not None:
        subscribers = [known_subscriber(subscribers, only, where=str(config.path))]
    states = store.subscriber_states([s.email for s in subscribers])
    monthly = any(s.monthly for s in subscribers)
    return make_roster(
        subscribers,
        states,
        now=now,
        day=day,
        lookback_days=config.digest.lookback_days,
        any_day=any_day or only is not None,
        zone=zoneinfo.ZoneInfo(config.digest.timezone),
        last_run=store.last_run(now) if monthly else None,
    )


def readers(config: Config, store: Store) -> list[Subscriber]:
    """The configured subscribers with the changes readers saved on their preferences page
    (:mod:`digest.preferences`), unless ``[server] self_service`` is off."""
    if not config.server.self_service:
        return list(config.subscriber_list)
    return effective(config.subscriber_list, store.preferences())


def _report(
    plan: Plan | None,
    day: dt.date,
    outcomes: Sequence[SubscriberOutcome],
    *,
    dry_run: bool,
    stopped: bool = False,
    unrecorded: int = 0,
    store_problem: str | None = None,
    suspended: Sequence[str] = (),
    channel_down: str | None = None,
) -> RunReport:
    batch = plan.batch if plan is not None else Batch()
    return RunReport(
        day=day,
        entries=batch.entries,
        papers=len(batch.papers),
        new=len(plan.new) if plan is not None else 0,
        failures=batch.failures,
        skipped_entries=batch.skipped,
        planned_elsewhere=plan is None,
        outcomes=tuple(outcomes),
        dry_run=dry_run,
        stopped=stopped,
        unrecorded=unrecorded,
        store_problem=store_problem,
        suspended=tuple(suspended),
        channel_down=channel_down,
    )


def _render(renderer: Renderer, subscriber: Subscriber, plan: Plan, day: dt.date) -> Rendered:
    return renderer.render(
        subscriber,
        plan.matches[subscriber.email],
        day=day,
        new_count=plan.new_count(subscriber.email),
        matched_count=plan.matched[subscriber.email],
        explanation=plan.explanations.get(subscriber.email),
        notice=source_note(plan.batch),
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
    watcher: FetchWatcher | None = None,
    claims: Claims | None = None,
) -> RunReport:
    """One full cycle. ``dry_run`` (or ``channel=None``) sends nothing and changes nothing;
    ``only`` sends just that subscriber's digest (due whatever their cadence).

    What earlier runs sent but could not record is recorded first (the journal), and the
    readers' status changes that waited for a busy store are applied. Then, under
    the store's planning lock, the run plans unless another worker's plan for the day is still
    being sent: the plan is recorded, every digest pending, before the first is sent (see
    :mod:`digest.send`). Then it sends what it claims (see :mod:`digest.dispatch`).
    """
    if dry_run or channel is None:
        return _rehearse_run(
            config, client=client, store=store, now=now, day=day, only=only, watcher=watcher
        )
    run_id = store.begin_run(now)
    reconcile(store, store.journal_path, run_id, now)
    StatusQueue.of(store).apply(store)  # readers who left while the store was busy: honoured
    claims = claims or Claims(worker_name(), config.digest.claim_lease, utc_now)
    plan: Plan | None = None
    outcomes: list[SubscriberOutcome] = []
    with store.planning_lock():
        if only is not None or not store.work_in_progress(day, claims.clock()):
            roster, plan = plan_run(
                config, client=client, store=store, now=now, day=day, record=True, only=only,
                watcher=watcher, should_stop=should_stop,
            )  # fmt: skip
            due, outcomes = _split_due(config, roster, plan, day)
            if not should_stop():  # stopping while the sources were read: plan nothing
                store.plan_digests(run_id, day, [_planned(plan, s) for s in due], now)
    renderer = Renderer(render_settings(config))
    journal = Journal.open(store.journal_path, len(config.subscriber_list))
    bounces = config.delivery.suspend_after_bounces
    sending = Sending(
        store, channel, journal, run_id, now, suspend_after=bounces or None,
        recorded=_renewal(store, claims),
    )  # fmt: skip
    subscribers = {s.address: s for s in readers(config, store)}
    planned = {} if plan is None else {address_of(e): m for e, m in plan.matches.items()}
    # why a digest is empty, for those this run planned (another worker's plans say it plainly)
    explained = {} if plan is None else {address_of(e): x for e, x in plan.explanations.items()}
    notice = None if plan is None else source_note(plan.batch)

    def render(subscriber: Subscriber, matches: Sequence[Match], digest: OpenDigest) -> Rendered:
        return renderer.render(
            subscriber, matches, day=day, new_count=digest.new_count, matched_count=digest.matched,
            explanation=explained.get(subscriber.address), notice=notice,
            digest_id=digest.digest_id,
        )  # fmt: skip

    try:
        stopped = send_claimed(
            store, sending, claims, subscribers, planned, render,
            day=day, should_stop=should_stop, progress=progress,
        )  # fmt: skip
        sending.finish()
    except BaseException:
        sending.abandon()
        journal.close(recorded=False)  # kept: the next run records what it holds
        raise
    finally:
        with contextlib.suppress(StoreError):
            store.release_claims(claims.worker)
    report = _report(
        plan,
        day,
        _in_order(config, _explained(plan, [*outcomes, *sending.outcomes])),
        dry_run=False,
        stopped=stopped,
        unrecorded=sending.unrecorded,
        store_problem=sending.store_problem,
        suspended=sending.suspended,
        channel_down=str(sending.channel_down) if sending.channel_down else None,
    )
    # The summary is printed anyway, and the run's sends are recorded or journaled; what can no
    # longer matter is pruned so the store stays the size of its window.
    with contextlib.suppress(StoreError):
        store.finish_run(run_id, now, "\n".join(report.summary()))
        store.prune(now, retention(config.digest.lookback_days, config.subscriber_list))
    return report


def _rehearse_run(
    config: Config,
    *,
    client: httpx.Client,
    store: Store,
    now: dt.datetime,
    day: dt.date,
    only: str | None,
    watcher: FetchWatcher | None,
) -> RunReport:
    """A dry run: planned as a run plans, each email rendered, nothing sent or recorded."""
    roster, plan = plan_run(
        config, client=client, store=store, now=now, day=day, record=False, only=only,
        watcher=watcher,
    )  # fmt: skip
    renderer = Renderer(render_settings(config))
    due, outcomes = _split_due(config, roster, plan, day)
    outcomes += [_rehearse(renderer, s, plan, day) for s in due]
    return _report(plan, day, _in_order(config, _explained(plan, outcomes)), dry_run=True)


def _split_due(
    config: Config, roster: Roster, plan: Plan, day: dt.date
) -> tuple[list[Subscriber], list[SubscriberOutcome]]:
    """The subscribers a digest goes to, and the outcomes of those it does not. A "nothing new"
    note (``send_empty``) goes at most once a period (day, week or month, by cadence), and
    never after a real digest of the same period: re-runs must not mail it again."""
    due: list[Subscriber] = []
    empty: list[SubscriberOutcome] = []
    for s in roster.due:
        if plan.matched[s.email] or (
            config.digest.send_empty and not roster.messaged_this_period(s, day)
        ):
            due.append(s)
        else:
            why = plan.explanations.get(s.email)
            reason = why.line if why is not None else "no new papers"
            empty.append(SubscriberOutcome(s.email, 0, skipped=reason, kind="empty"))
    return due, [*roster.waiting, *empty]


def _planned(plan: Plan, subscriber: Subscriber) -> PlannedDigest:
    email = subscriber.email
    return PlannedDigest(
        email,
        tuple(match.paper.key for match in plan.matches[email]),
        tuple(plan.passed_over[email]),
        matched=plan.matched[email],
        new_count=plan.new_count(email),
    )


def _renewal(store: Store, claims: Claims) -> Callable[[], None] | None:
    """After a recorded group on a shared store: the worker's claims renewed, once a quarter of
    the lease has passed since the last time (a write per group would cost more than it buys)."""
    if not store.shared:
        return None
    last = [claims.clock()]

    def renew() -> None:
        now = claims.clock()
        if now - last[0] >= claims.lease / 4:
            store.renew_claims(claims.worker, now, claims.lease)
            last[0] = now

    return renew


def _explained(plan: Plan | None, outcomes: Sequence[SubscriberOutcome]) -> list[SubscriberOutcome]:
    """``outcomes``, each digest sent without papers saying why it was empty."""
    if plan is None or not plan.explanations:
        return list(outcomes)
    why = {address_of(email): x.line for email, x in plan.explanations.items()}
    return [
        dataclasses.replace(o, why_empty=why.get(address_of(o.email)))
        if o.sent and not o.papers
        else o
        for o in outcomes
    ]


def _in_order(config: Config, outcomes: Sequence[SubscriberOutcome]) -> list[SubscriberOutcome]:
    """Outcomes in the config's order of subscribers (the summary lists them so)."""
    position = {s.email: n for n, s in enumerate(config.subscriber_list)}
    return sorted(outcomes, key=lambda o: position.get(o.email, len(position)))


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
    watcher: FetchWatcher | None = None,
) -> PreviewResult:
    """Render each subscriber's email into ``out_dir``; never sends, never changes the store.

    Planned as the run plans, so it shows what the run would send; a weekly digest not due
    today is shown as it stands (the week so far), and who left or is suspended is left out.
    """
    roster, plan = plan_run(
        config, client=client, store=store, now=now, day=day, record=False, only=only,
        any_day=True, watcher=watcher,
    )  # fmt: skip
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
    unsent = {
        s.email: "no papers matched, and [digest] send_empty is false"
        for s, _ in items
        if not (plan.matched[s.email] or config.digest.send_empty)
    }
    why = {email: x.line for email, x in plan.explanations.items()}
    paths = write_preview(out_dir, items, unsent, why)
    report = _report(plan, day, _in_order(config, _explained(plan, outcomes)), dry_run=True)
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
