"""What a run will send: the papers it may offer, and each subscriber's ranked matches.

A paper may be offered to a subscriber when it was first seen within the lookback window, or when
it is owed to them (a delivery that failed or never finished, whatever its age), and they were
never sent it nor passed it over. Matching ranks those per subscriber; the first ``max_papers``
make the email, the rest are *passed over*: recorded with the sent email so they do not return
tomorrow. ``run``, ``run --dry-run`` and ``preview`` all plan with :func:`make_plan`, so what a
preview shows is what the run sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from digest.identity import unique_by_key
from digest.match import compile_interests
from digest.models import Batch, Match, Paper, Subscriber
from digest.store import Store

CLOCK_MARGIN = dt.timedelta(days=1)
WEEKLY_WINDOW = dt.timedelta(days=7)


def retention(lookback_days: int) -> dt.timedelta:
    """How long sent digests and paper records can still matter: a paper may be offered while
    it is in the lookback window, or in a weekly subscriber's week, plus a margin for clocks."""
    return dt.timedelta(days=lookback_days) + WEEKLY_WINDOW + 2 * CLOCK_MARGIN


@dataclass
class Plan:
    """Papers read and classified, and each subscriber's matches (by email as configured).

    ``matches`` are those that make the email (at most ``max_papers``); ``passed_over`` the keys
    of those ranked below the cut; ``matched`` how many matched in all.
    """

    batch: Batch
    new: list[Paper]
    matches: dict[str, list[Match]] = field(default_factory=dict)
    passed_over: dict[str, tuple[str, ...]] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)


def make_plan(
    subscribers: Sequence[Subscriber],
    batch: Batch,
    *,
    store: Store,
    now: dt.datetime,
    lookback_days: int,
    record: bool,
) -> Plan:
    """Observe ``batch`` in ``store`` (recording it when ``record``) and match every subscriber."""
    observed = store.observe(batch.papers, now, record=record)
    since = now - dt.timedelta(days=lookback_days)
    recent = store.recent_papers(since)
    if not record:
        # What a run would have stored: the known papers merged with what was read now (a new
        # upvote count changes the ranking), and the new ones, first seen now.
        merged = {paper.key: paper for paper in observed.known}
        recent = [merged.get(paper.key, paper) for paper in recent] + observed.new
    candidates = unique_by_key(recent)
    interests = compile_interests(subscribers)
    emails = [s.email for s in subscribers]
    owed_by_email = store.owed_papers(emails)
    candidate_keys = {p.key for p in candidates}
    # A digest that listed a paper first seen since `since` was sent after `since`: the sent
    # digests of the window (a day's margin for clocks) are all that can hold a candidate.
    skip = store.delivered_keys(emails, since - CLOCK_MARGIN)
    ranked = interests.rank(candidates, skip=skip)
    plan = Plan(batch=batch, new=list(observed.new))
    for subscriber in subscribers:
        email = subscriber.email
        # A paper whose delivery failed stays owed even after it left the lookback window.
        owed = [p for p in owed_by_email[email] if p.key not in candidate_keys]
        ranking = ranked[email]
        if owed:
            papers = [p for p in [*candidates, *owed] if p.key not in skip[email]]
            ranking = interests.rank_one(email, papers)
        plan.matches[email] = ranking.matches
        plan.passed_over[email] = ranking.passed_over
        plan.matched[email] = ranking.matched
    return plan
