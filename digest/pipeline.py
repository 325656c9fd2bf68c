"""The one place where the stages are wired: ``run()`` (fetch → deliver → record) and ``preview()``.

Every collaborator that does I/O (HTTP client, store, transport, clock) is passed in, so the CLI,
the daemon and the tests all drive the same code with real or local parts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from digest.config import Config, SourceSection, SubscriberSection
from digest.deliver import Transport, build_message
from digest.errors import DeliveryError, UsageError
from digest.identity import unique_by_key
from digest.match import compile_interests
from digest.models import Batch, Match, Paper, Rendered, SourceFailure
from digest.render import Renderer, write_preview
from digest.sources import read_sources
from digest.store import Store

Progress = Callable[[int, int], None]
SUMMARY_LIST_LIMIT = 25  # subscribers listed one by one in a run's summary


@dataclass(frozen=True)
class SubscriberOutcome:
    """What one run did for one subscriber."""

    email: str
    matched: int
    papers: int = 0
    sent: bool = False
    skipped: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunReport:
    """Everything a run did, for the summary and the exit status."""

    day: dt.date
    entries: int
    papers: int
    new: int
    failures: tuple[SourceFailure, ...]
    outcomes: tuple[SubscriberOutcome, ...] = ()
    dry_run: bool = False
    stopped: bool = False

    @property
    def failed_deliveries(self) -> list[SubscriberOutcome]:
        """Subscribers whose message was not accepted."""
        return [o for o in self.outcomes if o.error]

    @property
    def exit_code(self) -> int:
        """0 when everything went through, 1 when a source or a delivery failed."""
        return 1 if self.failures or self.failed_deliveries else 0

    def summary(self, *, every_subscriber: bool | None = None) -> Iterator[str]:
        """The human-readable report, one line at a time.

        Failures are always listed one by one; the other subscribers only when there are few of
        them (or ``every_subscriber``), so a run for thousands stays a readable cron mail.
        """
        verb = "would send" if self.dry_run else "sent"
        sent = sum(1 for o in self.outcomes if o.sent)
        if every_subscriber is None:
            every_subscriber = len(self.outcomes) <= SUMMARY_LIST_LIMIT
        yield (
            f"{self.day}: read {self.entries} entries, {self.papers} distinct papers, "
            f"{self.new} new"
        )
        for failure in self.failures:
            hint = f" ({failure.hint})" if failure.hint else ""
            yield f"  source failed: {failure.source}: {failure.message}{hint}"
        for outcome in self.outcomes:
            if not (every_subscriber or outcome.error):
                continue
            if outcome.error:
                state = f"FAILED: {outcome.error} (retried next run)"
            elif outcome.sent:
                state = f"{verb} {outcome.papers}"
            else:
                state = f"not sent: {outcome.skipped}"
            yield f"  {outcome.email}: {outcome.matched} matched, {state}"
        papers = sum(o.papers for o in self.outcomes if o.sent)
        yield f"{verb} {sent} of {len(self.outcomes)} digests ({papers} papers in all)" + (
            "; stopped early on request" if self.stopped else ""
        )


@dataclass
class _Plan:
    """Papers read and classified, and each subscriber's matches: what run and preview share.

    ``matches`` are those that make the email (at most ``max_papers``); ``passed_over`` the keys
    of those ranked below the cut, recorded with a sent email so they do not return tomorrow.
    """

    batch: Batch
    new: list[Paper]
    matches: dict[str, list[Match]] = field(default_factory=dict)
    passed_over: dict[str, list[str]] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)

    def report(
        self,
        day: dt.date,
        outcomes: Sequence[SubscriberOutcome],
        *,
        dry_run: bool,
        stopped: bool = False,
    ) -> RunReport:
        """The report of a run (or preview) that carried out this plan."""
        return RunReport(
            day=day,
            entries=self.batch.entries,
            papers=len(self.batch.papers),
            new=len(self.new),
            failures=self.batch.failures,
            outcomes=tuple(outcomes),
            dry_run=dry_run,
            stopped=stopped,
        )


def collect(
    config: Config,
    *,
    client: httpx.Client,
    day: dt.date,
    sources: Sequence[SourceSection] | None = None,
) -> Batch:
    """Read the configured sources (or ``sources``), de-duplicated within the batch."""
    chosen = config.sources if sources is None else sources
    return read_sources(
        [_absolute(config, s) for s in chosen],
        client=client,
        fetch=config.fetch,
        base_dir=config.base_dir,
        today=day,
    )


def _absolute(config: Config, source: SourceSection) -> SourceSection:
    if source.path is None:
        return source
    return source.model_copy(update={"path": str(config.resolve(source.path))})


def _plan(
    config: Config,
    *,
    client: httpx.Client,
    store: Store,
    now: dt.datetime,
    day: dt.date,
    record: bool,
) -> _Plan:
    batch = collect(config, client=client, day=day)
    observed = store.observe(batch.papers, now, record=record)
    since = now - dt.timedelta(days=config.digest.lookback_days)
    candidates = unique_by_key([*store.recent_papers(since), *([] if record else observed.new)])
    interests = compile_interests(config.subscribers)
    emails = [s.email for s in config.subscribers]
    owed_by_email = store.owed_papers(emails)
    owed_keys = {p.key for owed in owed_by_email.values() for p in owed}
    skip = store.delivered_keys(emails, {p.key for p in candidates} | owed_keys)
    ranked = interests.match(candidates, skip=skip, capped=False)
    candidate_keys = {p.key for p in candidates}
    plan = _Plan(batch=batch, new=list(observed.new))
    for subscriber in config.subscribers:
        email = subscriber.email
        # A paper whose delivery failed stays owed even after it left the lookback window.
        owed = [p for p in owed_by_email[email] if p.key not in candidate_keys]
        if owed:
            papers = [p for p in [*candidates, *owed] if p.key not in skip[email]]
            ranked[email] = interests.match_one(email, papers, capped=False)
        everything = ranked[email]
        plan.matches[email] = everything[: subscriber.max_papers]
        plan.passed_over[email] = [m.paper.key for m in everything[subscriber.max_papers :]]
        plan.matched[email] = len(everything)
    return plan


def _render(
    renderer: Renderer, subscriber: SubscriberSection, plan: _Plan, day: dt.date
) -> Rendered:
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
    transport: Transport | None,
    now: dt.datetime,
    day: dt.date,
    dry_run: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
) -> RunReport:
    """One full cycle. ``dry_run`` (or ``transport=None``) sends nothing and changes nothing.

    Each subscriber's papers are marked pending before the send and sent only once the transport
    has accepted the message, so a crash at any point loses nothing: at worst the one message in
    flight is sent again next run.
    """
    dry_run = dry_run or transport is None
    plan = _plan(config, client=client, store=store, now=now, day=day, record=not dry_run)
    renderer = Renderer(config)
    run_id = None if dry_run else store.begin_run(now)
    outcomes: list[SubscriberOutcome] = []
    stopped = False
    total = len(config.subscribers)
    for done, subscriber in enumerate(config.subscribers, start=1):
        if should_stop():
            stopped = True
            break
        if progress is not None:
            progress(done, total)
        matched = plan.matched[subscriber.email]
        if matched == 0 and not config.digest.send_empty:
            outcomes.append(SubscriberOutcome(subscriber.email, 0, skipped="no new papers"))
            continue
        rendered = _render(renderer, subscriber, plan, day)
        papers = len(rendered.paper_keys)
        error = None
        if not dry_run and transport is not None and run_id is not None:
            passed_over = plan.passed_over[subscriber.email]
            error = _deliver(
                config, store, transport, run_id, subscriber, rendered, passed_over, now
            )
        outcome = SubscriberOutcome(subscriber.email, matched, papers, sent=not error, error=error)
        outcomes.append(outcome)
    report = plan.report(day, outcomes, dry_run=dry_run, stopped=stopped)
    if run_id is not None:
        store.finish_run(run_id, now, "\n".join(report.summary()))
    return report


def _deliver(
    config: Config,
    store: Store,
    transport: Transport,
    run_id: int,
    subscriber: SubscriberSection,
    rendered: Rendered,
    passed_over: Sequence[str],
    now: dt.datetime,
) -> str | None:
    """Send one digest and record the outcome in the ledger; the error, if any, in one line."""
    keys = list(rendered.paper_keys)
    try:
        message = build_message(
            rendered, subscriber, config.delivery, title=config.digest.title, now=now
        )
        store.mark_pending(run_id, subscriber.email, keys, now)
        transport.send(message)
    except DeliveryError as exc:
        store.mark_failed(run_id, subscriber.email, keys, str(exc), now)
        return str(exc)
    message_id = str(message["Message-ID"])
    store.mark_sent(run_id, subscriber.email, keys, message_id, now, passed_over=passed_over)
    return None


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
    chosen = [
        s for s in config.subscribers if only is None or s.email.casefold() == only.casefold()
    ]
    if not chosen:
        raise UsageError(
            f"no subscriber {only!r} in the config",
            where=str(config.path),
            hint="list them with `digest check`; or drop --subscriber to preview everyone",
        )
    plan = _plan(config, client=client, store=store, now=now, day=day, record=False)
    renderer = Renderer(config)
    items = [(s, _render(renderer, s, plan, day)) for s in chosen]
    paths = write_preview(out_dir, items)
    outcomes = tuple(
        SubscriberOutcome(s.email, plan.matched[s.email], len(r.paper_keys), sent=True)
        for s, r in items
    )
    return PreviewResult(paths=paths, report=plan.report(day, outcomes, dry_run=True))
