"""What a run will send: the papers it may offer, and each subscriber's ranked matches.

A paper may be offered to a subscriber when it was first seen within their window (the lookback
window for daily digests; the week, or since the last digest, for weekly ones; since the last
digest for monthly ones), or when it is
owed to them (a delivery that failed or never finished, whatever its age), and they were never
sent it nor passed it over. Matching ranks those per subscriber; the first ``max_papers`` make
the email, the rest are *passed over*: recorded with the sent email so they do not return
tomorrow. ``run``, ``run --dry-run`` and ``preview`` all plan with :func:`make_plan`, so what a
preview shows is what the run sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from digest.explain import explain_empty
from digest.identity import unique_by_key
from digest.likes import liked_papers
from digest.match import compile_interests
from digest.models import Batch, Explanation, Match, Paper, Subscriber
from digest.store import Observed, PaperExtras, PaperHistory, ReaderRecords

CLOCK_MARGIN = dt.timedelta(days=1)
WEEKLY_WINDOW = dt.timedelta(days=7)
MONTHLY_WINDOW = dt.timedelta(days=31)


def retention(lookback_days: int, subscribers: Sequence[Subscriber] = ()) -> dt.timedelta:
    """How long sent digests and paper records can still matter: a paper may be offered while
    it is in the lookback window, or in a weekly subscriber's week (a monthly one's month, when
    ``subscribers`` hold one), plus a margin for clocks."""
    longest = MONTHLY_WINDOW if any(s.monthly for s in subscribers) else WEEKLY_WINDOW
    return dt.timedelta(days=lookback_days) + longest + 2 * CLOCK_MARGIN


@dataclass
class Plan:
    """Papers read and classified, and each subscriber's matches (by email as configured).

    ``matches`` are those that make the email (at most ``max_papers``); ``passed_over`` the keys
    of those ranked below the cut; ``matched`` how many matched in all; ``window_papers`` how many
    papers the window of a subscriber with a window of their own (a weekly digest) held;
    ``explanations`` why the digests that hold no paper are empty (:mod:`digest.explain`).
    """

    batch: Batch
    new: list[Paper]
    matches: dict[str, list[Match]] = field(default_factory=dict)
    passed_over: dict[str, tuple[str, ...]] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    window_papers: dict[str, int] = field(default_factory=dict)
    explanations: dict[str, Explanation] = field(default_factory=dict)

    def new_count(self, email: str) -> int:
        """The papers new to this subscriber's digest: today's, or their window's."""
        return self.window_papers.get(email, len(self.new))


class PlanningStore(PaperHistory, PaperExtras, ReaderRecords, Protocol):
    """What planning reads and keeps: the papers seen and delivered, their vectors and the liked
    papers, the readers' verdicts and profiles."""


def make_plan(
    subscribers: Sequence[Subscriber],
    batch: Batch,
    *,
    store: PlanningStore,
    now: dt.datetime,
    lookback_days: int,
    record: bool,
    windows: Mapping[str, dt.datetime] | None = None,
    liked: Mapping[str, Paper] | None = None,
    trending: int = 0,
) -> Plan:
    """Observe ``batch`` in ``store`` (recording it when ``record``) and match every subscriber.

    ``windows`` gives the subscribers whose window is not the lookback window (weekly digests)
    the time it starts; ``liked``, liked papers fetched for this run (:mod:`digest.likes`);
    ``trending``, how many of the week's most upvoted papers a digest adds whatever the
    interests, for subscribers who do not say (:func:`add_trending`).
    """
    windows = windows or {}
    observed = store.observe(batch.papers, now, record=record)
    since = now - dt.timedelta(days=lookback_days)
    groups: dict[dt.datetime, list[Subscriber]] = {}
    for subscriber in subscribers:
        groups.setdefault(windows.get(subscriber.email, since), []).append(subscriber)
    emails = [s.email for s in subscribers]
    owed_by_email = store.owed_papers(emails)
    wants_trending = {s.email: n for s in subscribers if (n := _trending(s, trending))}
    # A digest that listed a paper first seen since a window's start was sent after it: the sent
    # digests of the widest window (a day's margin for clocks) are all that can hold a candidate.
    earliest = min(groups, default=since)
    if wants_trending:
        earliest = min(earliest, now - WEEKLY_WINDOW)
    skip = store.delivered_keys(emails, earliest - CLOCK_MARGIN)
    plan = Plan(batch=batch, new=list(observed.new))
    for start, members in groups.items():
        candidates = _candidates(store, observed, start, record=record)
        candidate_keys = {p.key for p in candidates}
        likes = liked_papers(members, candidates, store, liked)
        interests = compile_interests(members, liked=likes, store=store, feedback=store)
        ranked = interests.rank(candidates, skip=skip)
        for subscriber in members:
            email = subscriber.email
            if start != since:
                plan.window_papers[email] = len(candidates)
            # A paper whose delivery failed stays owed even after it left the window.
            owed = [p for p in owed_by_email[email] if p.key not in candidate_keys]
            ranking = ranked[email]
            if owed:
                papers = [p for p in [*candidates, *owed] if p.key not in skip[email]]
                ranking = interests.rank_one(email, papers)
            plan.matches[email] = ranking.matches
            plan.passed_over[email] = ranking.passed_over
            plan.matched[email] = ranking.matched
        empty = [s for s in members if not plan.matches[s.email]]
        plan.explanations.update(
            explain_empty(empty, candidates, batch, skip=skip, liked=likes, store=store)
        )
    if wants_trending:
        week = _candidates(store, observed, now - WEEKLY_WINDOW, record=record)
        add_trending(plan, week, wants_trending, skip)
    return plan


def _trending(subscriber: Subscriber, default: int) -> int:
    return default if subscriber.trending is None else subscriber.trending


def add_trending(
    plan: Plan,
    week: Sequence[Paper],
    wanted: Mapping[str, int],
    skip: Mapping[str, Collection[str]],
) -> None:
    """Add to each digest of ``wanted`` (email -> how many) the week's most upvoted papers of
    ``week`` that it does not hold already and its reader never received nor passed over,
    marked ``trending``; they are delivered, and recorded, like any other paper. A digest with
    no match gets none (they never make a digest on their own)."""
    ranked = sorted(
        (p for p in week if p.upvotes),
        key=lambda p: (-(p.upvotes or 0), p.key),
    )
    shared: dict[str, Match] = {}  # one Match per paper: views and cards are shared too
    for email, count in wanted.items():
        matches = plan.matches.get(email)
        if not matches:
            continue
        held = {m.paper.key for m in matches}
        had = skip.get(email, ())
        extra: list[Match] = []
        for paper in ranked:
            if len(extra) == count:
                break
            if paper.key in held or paper.key in had:
                continue
            match = shared.get(paper.key)
            if match is None:
                match = shared[paper.key] = Match(paper=paper, trending=True)
            extra.append(match)
        if extra:
            plan.matches[email] = [*matches, *extra]


def _candidates(
    store: PaperHistory, observed: Observed, since: dt.datetime, *, record: bool
) -> list[Paper]:
    """The papers first seen since ``since``, as the store holds them after this batch."""
    recent = store.recent_papers(since)
    if not record:
        # What a run would have stored: the known papers merged with what was read now (a new
        # upvote count changes the ranking), and the new ones, first seen now.
        merged = {paper.key: paper for paper in observed.known}
        recent = [merged.get(paper.key, paper) for paper in recent] + observed.new
    return unique_by_key(recent)
