"""What a run did, for its summary and its exit status: per source, per subscriber, in all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from digest.models import SourceFailure

SUMMARY_LIST_LIMIT = 25  # subscribers listed one by one in a run's summary
SKIPPED_LABELS = {
    "unsubscribed": "unsubscribed",
    "suspended": "suspended after bounces",
    "weekly": "weekly, not due today",
    "monthly": "monthly, not due today",
    "paused": "paused by the reader",
    "empty": "with no new papers",
    "owed": "owed (not sent: the channel is unavailable)",
}


@dataclass(frozen=True)
class SubscriberOutcome:
    """What one run did for one subscriber."""

    email: str
    matched: int
    papers: int = 0
    sent: bool = False
    skipped: str | None = None
    error: str | None = None
    permanent: bool = False
    kind: str | None = None  # why skipped, in a word: "unsubscribed", "suspended", "weekly", ...
    why_empty: str | None = None  # a digest sent without papers: why (digest.explain)


@dataclass(frozen=True)
class RunReport:
    """Everything a run did, for the summary and the exit status."""

    day: dt.date
    entries: int
    papers: int
    new: int
    failures: tuple[SourceFailure, ...]
    outcomes: tuple[SubscriberOutcome, ...] = ()
    skipped_entries: tuple[SourceFailure, ...] = ()
    dry_run: bool = False
    stopped: bool = False
    unrecorded: int = 0
    store_problem: str | None = None
    suspended: tuple[str, ...] = ()
    planned_elsewhere: bool = False  # another worker's plan for the day was being sent
    channel_down: str | None = None  # why sending stopped: the channel itself is unavailable

    @property
    def failed_deliveries(self) -> list[SubscriberOutcome]:
        """Subscribers whose message was not accepted."""
        return [o for o in self.outcomes if o.error]

    @property
    def exit_code(self) -> int:
        """0 when everything went through, 1 when a source or a delivery failed."""
        failed = self.failures or self.failed_deliveries or self.store_problem
        return 1 if failed or self.channel_down else 0

    def problems(self) -> Iterator[str]:
        """The lines that need an operator's eye: failed sources, skipped entries, failed
        deliveries (what ``-q`` prints, and what goes to stderr)."""
        yield from self._source_problems()
        for outcome in self.failed_deliveries:
            yield f"{outcome.email}: {_state(outcome, 'sent')}"
        yield from self._channel_problem()
        yield from self._store_problems()

    def _channel_problem(self) -> Iterator[str]:
        if self.channel_down is None:
            return
        sent = sum(1 for o in self.outcomes if o.sent)
        owed = sum(1 for o in self.outcomes if o.kind == "owed")
        done = "nothing was sent" if not sent else f"{sent} sent, then sending stopped"
        yield (
            f"delivery: {done}: the channel is unavailable: {self.channel_down} "
            f"({owed} digests stay owed and go out with the next run; nobody's bounce count "
            "moved)"
        )

    def _store_problems(self) -> Iterator[str]:
        if self.store_problem is None:
            return
        waiting = (
            f"{self.unrecorded} accepted digests wait in the journal; the next run records them "
            "before it sends anything"
            if self.unrecorded
            else "everything sent was recorded in the end"
        )
        yield f"store: {self.store_problem} ({waiting})"

    def _source_problems(self) -> Iterator[str]:
        for failure in self.failures:
            hint = f" ({failure.hint})" if failure.hint else ""
            yield f"source failed: {failure.source}: {failure.message}{hint}"
        for skipped in self.skipped_entries:
            yield f"entry skipped: {skipped.source}: {skipped.message}"

    def summary(self, *, every_subscriber: bool | None = None) -> Iterator[str]:
        """The human-readable report, one line at a time.

        Failures are always listed one by one; the other subscribers only when there are few of
        them (or ``every_subscriber``), so a run for thousands stays a readable cron mail.
        """
        verb = "would send" if self.dry_run else "sent"
        sent = sum(1 for o in self.outcomes if o.sent)
        if every_subscriber is None:
            every_subscriber = len(self.outcomes) <= SUMMARY_LIST_LIMIT
        if self.planned_elsewhere:
            yield f"{self.day}: sending the digests another run planned for the day"
        else:
            yield (
                f"{self.day}: read {self.entries} entries, {self.papers} distinct papers, "
                f"{self.new} new"
            )
        for line in self._source_problems():
            yield f"  {line}"
        for outcome in self.outcomes:
            if every_subscriber or outcome.error:
                yield f"  {outcome.email}: {outcome.matched} matched, {_state(outcome, verb)}"
        for address in self.suspended:
            yield (
                f"  {address}: suspended: refused for good run after run "
                f"(`digest subscribers resubscribe {address}` lifts it)"
            )
        for line in [*self._channel_problem(), *self._store_problems()]:
            yield f"  {line}"
        waiting: dict[str, int] = {}
        for outcome in self.outcomes:
            if outcome.kind is not None:
                waiting[outcome.kind] = waiting.get(outcome.kind, 0) + 1
        if waiting:
            yield "skipped: " + ", ".join(
                f"{count} {SKIPPED_LABELS.get(kind, kind)}" for kind, count in waiting.items()
            )
        papers = sum(o.papers for o in self.outcomes if o.sent)
        yield f"{verb} {sent} of {len(self.outcomes)} digests ({papers} papers in all)" + (
            "; stopped early on request" if self.stopped else ""
        )


def _state(outcome: SubscriberOutcome, verb: str) -> str:
    if outcome.error:
        then = "fix the config" if outcome.permanent else "retried next run"
        return f"FAILED: {outcome.error} ({then})"
    if outcome.sent:
        return f"{verb} {outcome.papers}" + (f": {outcome.why_empty}" if outcome.why_empty else "")
    return f"not sent: {outcome.skipped}"
