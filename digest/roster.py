"""Who a run writes to: the active subscribers whose day it is, and why each of the others waits.

The config lists who is subscribed; the store says who left (unsubscribed, when and how) and who
is suspended (their address bounced run after run). A weekly subscriber's digest is due on their
weekday, holding what was first seen in the week before; one whose weekday passed without a
digest (the machine was off) gets it on the next run, covering the time since the last one (as
far back as the store keeps papers: :func:`digest.plan.retention`).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from digest.errors import UsageError
from digest.models import WEEKDAYS, Subscriber
from digest.plan import CLOCK_MARGIN, WEEKLY_WINDOW, retention
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
) -> Roster:
    """Sort ``subscribers`` (``states`` by address) for a run on ``day`` at ``now``; ``zone``
    is what "a day" means for the last message each was sent.

    ``any_day``: weekly digests are due whatever the weekday (``run --subscriber``, preview).
    """
    roster = Roster(due=[])
    oldest = now - retention(lookback_days) + CLOCK_MARGIN  # older papers may be pruned
    week = max(WEEKLY_WINDOW, dt.timedelta(days=lookback_days))
    for subscriber in subscribers:
        state = states.get(subscriber.address)
        if state is not None and state.status != "active":
            roster.waiting.append(_inactive(subscriber, state))
            continue
        if state is not None and state.last_sent:
            sent = dt.datetime.fromisoformat(state.last_sent)
            roster.last_sent[subscriber.email] = sent.astimezone(zone).date()
        if not subscriber.weekly:
            roster.due.append(subscriber)
            continue
        last = dt.datetime.fromisoformat(state.last_sent) if state and state.last_sent else None
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


def _inactive(subscriber: Subscriber, state: SubscriberState) -> SubscriberOutcome:
    since = f" since {state.changed[:10]}" if state.changed else ""
    how = f" ({state.how})" if state.how else ""
    if state.status == "suspended":
        reason = f"suspended{since}{how}: `digest subscribers resubscribe {state.email}` lifts it"
    else:
        reason = f"unsubscribed{since}{how}"
    return SubscriberOutcome(subscriber.email, 0, skipped=reason, kind=state.status)
