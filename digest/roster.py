"""Who a run writes to: the active subscribers whose day it is, and why each of the others waits.

The config lists who is subscribed; the store says who left (unsubscribed, when and how) and who
is suspended (their address bounced run after run). A weekly subscriber's digest is due on their
weekday, holding what was first seen in the week before; one whose weekday passed without a
digest (the machine was off) gets it on the next run, covering the time since the last one (as
far back as the store keeps papers: :func:`digest.plan.retention`). A monthly subscriber's digest
is due on their day of the month (:mod:`digest.cadence`), holding what was first seen since their
last digest (the month before, for a new reader).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from digest.cadence import due_day, latest_due
from digest.errors import UsageError
from digest.models import WEEKDAYS, Subscriber
from digest.plan import CLOCK_MARGIN, MONTHLY_WINDOW, WEEKLY_WINDOW, retention
from digest.report import SubscriberOutcome
from digest.store import SubscriberState


@dataclass(frozen=True)
class Roster:
    """The subscribers a run plans for, the windows of those with one of their own (weekly
    digests), and an outcome for each subscriber left out."""

    due: list[Subscriber]
    windows: dict[str, dt.datetime] = field(default_factory=dict)
    waiting: list[SubscriberOutcome] = field(default_factory=list)
    last_sent: dict[str, dt.date] = field(default_factory=dict)  # by email: the local day

    def messaged_this_period(self, subscriber: Subscriber, day: dt.date) -> bool:
        """Whether ``subscriber`` already had a message (a digest, or a "nothing new" note) in
        the period ``day`` belongs to: that day, or for a weekly reader the week up to it."""
        last = self.last_sent.get(subscriber.email)
        if last is None:
            return False
        if subscriber.monthly:
            return last >= latest_due(day, subscriber.month_day)
        return last > day - dt.timedelta(days=7) if subscriber.weekly else last >= day


def known_subscriber(subscribers: Sequence[Subscriber], email: str, *, where: str) -> Subscriber:
    """The subscriber of ``email`` (any case); a UsageError naming the nearest addresses when
    there is none, since the usual cause is a typo."""
    wanted = email.strip().lower()
    for subscriber in subscribers:
        if subscriber.address == wanted:
            return subscriber
    near = difflib.get_close_matches(wanted, [s.address for s in subscribers], n=3, cutoff=0.6)
    raise UsageError(
        f"no subscriber {email!r} in the config",
        where=where,
        hint=f"did you mean {' or '.join(near)}?"
        if near
        else "see them with `digest subscribers list`",
    )


def make_roster(
    subscribers: Sequence[Subscriber],
    states: Mapping[str, SubscriberState],
    *,
    now: dt.datetime,
    day: dt.date,
    lookback_days: int,
    any_day: bool = False,
    zone: dt.tzinfo = dt.UTC,
    last_run: dt.datetime | None = None,
) -> Roster:
    """Sort ``subscribers`` (``states`` by address) for a run on ``day`` at ``now``; ``zone``
    is what "a day" means for the last message each was sent; ``last_run``, when the run before
    this one started (a monthly reader's day passed unseen only when no run came on or after it).

    ``any_day``: weekly digests are due whatever the weekday (``run --subscriber``, preview).
    """
    roster = Roster(due=[])
    oldest = now - retention(lookback_days, subscribers) + CLOCK_MARGIN  # older may be pruned
    week = max(WEEKLY_WINDOW, dt.timedelta(days=lookback_days))
    for subscriber in subscribers:
        state = states.get(subscriber.address)
        if state is not None and state.status != "active":
            roster.waiting.append(_inactive(subscriber, state))
            continue
        if state is not None and state.last_sent:
            sent = dt.datetime.fromisoformat(state.last_sent)
            roster.last_sent[subscriber.email] = sent.astimezone(zone).date()
        if subscriber.paused_until is not None and day < subscriber.paused_until:
            until = subscriber.paused_until.isoformat()
            roster.waiting.append(
                SubscriberOutcome(
                    subscriber.email, 0, skipped=f"paused until {until}", kind="paused"
                )
            )
            continue
        last = dt.datetime.fromisoformat(state.last_sent) if state and state.last_sent else None
        if subscriber.monthly:
            ran = last_run.astimezone(zone).date() if last_run is not None else None
            _monthly(
                roster, subscriber, last, now=now, day=day, oldest=oldest, any_day=any_day,
                last_run=ran,
            )  # fmt: skip
            continue
        if not subscriber.weekly:
            roster.due.append(subscriber)
            continue
        missed = last is not None and now - last > WEEKLY_WINDOW + CLOCK_MARGIN
        if day.weekday() == subscriber.weekday_number or missed or any_day:
            start = now - week
            if missed and last is not None:
                start = max(min(start, last - CLOCK_MARGIN), oldest)
            roster.due.append(subscriber)
            roster.windows[subscriber.email] = start
            continue
        weekday = WEEKDAYS[subscriber.weekday_number].capitalize()
        roster.waiting.append(
            SubscriberOutcome(
                subscriber.email, 0, skipped=f"weekly, next on {weekday}", kind="weekly"
            )
        )
    return roster


def _monthly(
    roster: Roster,
    subscriber: Subscriber,
    last: dt.datetime | None,
    *,
    now: dt.datetime,
    day: dt.date,
    oldest: dt.datetime,
    any_day: bool,
    last_run: dt.date | None,
) -> None:
    """A monthly reader: due on their day, or on the first run after it when no run came on that
    day (the machine was off), with every paper first seen since their last digest. A day whose
    run found nothing to send (``send_empty`` off) is not missed: the next digest is next month's.
    """
    dom = subscriber.month_day
    on_day = day == due_day(day.year, day.month, dom)
    last_day = roster.last_sent.get(subscriber.email)
    scheduled = latest_due(day, dom)
    unseen = last_run is None or last_run < scheduled
    missed = last_day is not None and last_day < scheduled and unseen
    if on_day or missed or any_day:
        start = last - CLOCK_MARGIN if last is not None else now - MONTHLY_WINDOW
        roster.due.append(subscriber)
        roster.windows[subscriber.email] = max(start, oldest)
        return
    following = due_day(day.year, day.month, dom)
    if following < day:
        following = due_day(day.year + day.month // 12, day.month % 12 + 1, dom)
    roster.waiting.append(
        SubscriberOutcome(
            subscriber.email, 0, skipped=f"monthly, next on {following.isoformat()}", kind="monthly"
        )
    )


def _inactive(subscriber: Subscriber, state: SubscriberState) -> SubscriberOutcome:
    since = f" since {state.changed[:10]}" if state.changed else ""
    how = f" ({state.how})" if state.how else ""
    if state.status == "suspended":
        reason = f"suspended{since}{how}: `digest subscribers resubscribe {state.email}` lifts it"
    else:
        reason = f"unsubscribed{since}{how}"
    return SubscriberOutcome(subscriber.email, 0, skipped=reason, kind=state.status)
