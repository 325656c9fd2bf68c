"""Who a run writes to: active subscribers whose day it is; the others wait, each with a reason."""

from __future__ import annotations

import datetime as dt

from digest.config import subscriber_from
from digest.plan import WEEKLY_WINDOW
from digest.roster import make_roster
from digest.store import SubscriberState

FRIDAY = dt.date(2026, 11, 27)
NOW = dt.datetime(2026, 11, 27, 7, 0, tzinfo=dt.UTC)
DAILY = subscriber_from({"email": "daily@example.org"})
WEEKLY = subscriber_from(
    {"email": "Weekly@example.org", "frequency": "weekly", "weekday": "friday"}
)


def roster(  # type: ignore[no-untyped-def]
    day: dt.date = FRIDAY, states: dict[str, SubscriberState] | None = None, any_day: bool = False
):
    now = dt.datetime.combine(day, NOW.timetz())
    return make_roster(
        [DAILY, WEEKLY], states or {}, now=now, day=day, lookback_days=3, any_day=any_day
    )


def test_daily_every_day_weekly_on_its_weekday_with_the_week_as_window() -> None:
    friday = roster()
    assert [s.email for s in friday.due] == [DAILY.email, WEEKLY.email]
    assert friday.windows == {WEEKLY.email: NOW - WEEKLY_WINDOW}
    thursday = roster(FRIDAY - dt.timedelta(days=1))
    assert [s.email for s in thursday.due] == [DAILY.email]
    (waiting,) = thursday.waiting
    assert waiting.email == WEEKLY.email and waiting.kind == "weekly"
    assert waiting.skipped == "weekly, next on Friday"


def test_a_missed_weekday_is_caught_up_from_the_last_digest() -> None:
    last = NOW - dt.timedelta(days=7)  # the Friday before; this Friday's run never happened
    state = SubscriberState(WEEKLY.address, last_sent=last.isoformat())
    monday = FRIDAY + dt.timedelta(days=3)
    caught = roster(monday, {WEEKLY.address: state})
    assert WEEKLY in caught.due
    assert caught.windows[WEEKLY.email] <= last  # everything since the last digest
    # ...but never further back than the store keeps papers (12 days at lookback 3)
    long_ago = SubscriberState(WEEKLY.address, last_sent=(NOW - dt.timedelta(days=60)).isoformat())
    start = roster(monday, {WEEKLY.address: long_ago}).windows[WEEKLY.email]
    assert start == dt.datetime.combine(monday, NOW.timetz()) - dt.timedelta(days=11)


def test_unsubscribed_and_suspended_wait_with_when_and_how() -> None:
    states = {
        DAILY.address: SubscriberState(
            DAILY.address, status="unsubscribed", changed="2026-11-20T08:00:00", how="one-click"
        ),
        WEEKLY.address: SubscriberState(
            WEEKLY.address, status="suspended", changed="2026-11-21T07:00:00", how="bounced"
        ),
    }
    result = roster(states=states)
    assert result.due == []
    left, suspended = result.waiting
    assert left.kind == "unsubscribed"
    assert left.skipped == "unsubscribed since 2026-11-20 (one-click)"
    assert suspended.kind == "suspended"
    assert "digest subscribers resubscribe weekly@example.org" in (suspended.skipped or "")


def test_any_day_makes_weekly_digests_due() -> None:
    thursday = roster(FRIDAY - dt.timedelta(days=1), any_day=True)
    assert WEEKLY in thursday.due and thursday.waiting == []
