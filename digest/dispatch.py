"""Which digests this worker sends: claimed from the store in batches, each email rebuilt from the
stored plan when another worker made it.

Every run sends by claiming: on a store of one sender (SQLite) the claims only mark progress;
on a shared store (PostgreSQL) several workers on several hosts claim batches side by side, a
claim lasting a lease that each recorded group renews. A worker that dies stops renewing; once
its lease runs out the others (still waiting for the plan's last digests) or the next run take
over its digests. The email of a digest another worker planned is rebuilt from what the plan
stored: its papers (ranked again for the subscriber: the ranking depends on nothing else), how
many matched and how many were new.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from digest.likes import liked_papers
from digest.match import compile_interests
from digest.match.text import TextCache
from digest.models import Match, Rendered, Subscriber
from digest.plan import PlanningStore
from digest.send import Sending
from digest.store import DigestClaims, OpenDigest, address_of

CLAIM_BATCH = 100
WAIT_POLL = 0.5  # seconds between looks at other workers' claims

Render = Callable[[Subscriber, Sequence[Match], OpenDigest], Rendered]
Progress = Callable[[int, int], None]


def worker_name() -> str:
    """This process, as its claims name it: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def dead_here(worker: str) -> bool:
    """Whether ``worker`` ran on this host and its process is gone (its claims need not wait
    for the lease: nobody is sending them). A pid reused since only makes us wait."""
    parts = worker.split(":")
    if len(parts) < 3 or ":".join(parts[:-2]) != socket.gethostname():
        return False
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


class DispatchStore(DigestClaims, PlanningStore, Protocol):
    """What sending claimed digests needs of the store: the claims, and what rebuilding the
    digests another worker planned reads (the papers, vectors, likes and verdicts)."""


@dataclass(frozen=True)
class Claims:
    """How this worker claims: its name, how long a claim lasts, and its clock."""

    worker: str
    lease: dt.timedelta
    clock: Callable[[], dt.datetime]
    sleep: Callable[[float], None] = time.sleep
    batch: int = CLAIM_BATCH


def send_claimed(
    store: DispatchStore,
    sending: Sending,
    claims: Claims,
    subscribers: Mapping[str, Subscriber],
    planned: Mapping[str, list[Match]],
    render: Render,
    *,
    day: dt.date,
    should_stop: Callable[[], bool],
    progress: Progress | None = None,
) -> bool:
    """Claim and send until no digest is left (or ``should_stop``, or the channel is down: the
    rest stays owed, unclaimed); whether it stopped early on request.

    ``subscribers`` and ``planned`` (the matches of the digests this worker planned) are by
    address; the digests another worker planned are rebuilt.
    """
    done = 0
    # Matches rebuilt for other workers' plans, one object per value across batches: the
    # renderer makes each paper's view and card once per Match object, as for this plan's own.
    rebuilt: dict[Match, Match] = {}
    texts = TextCache()  # and the papers tokenised once for every batch
    while not should_stop() and sending.channel_down is None:
        batch = store.claim_digests(claims.worker, claims.batch, claims.clock(), claims.lease)
        if not batch:
            if store.shared and _others_still_sending(store, claims):
                continue
            return False
        matches = _matches_of(store, batch, subscribers, planned, rebuilt=rebuilt, texts=texts)
        for digest in batch:
            if should_stop():
                return True
            done += 1
            if progress is not None:
                progress(done, done)
            address = address_of(digest.email)
            subscriber = subscribers.get(address)
            if subscriber is None:
                sending.hold_back(digest, "no longer in the config: sent if listed again")
                continue
            sending.send(
                subscriber,
                digest,
                _bound(render, matches[address], digest),
                matches[address],
                matched=digest.matched,
                day=day,
            )
    return True


def _bound(
    render: Render, matches: Sequence[Match], digest: OpenDigest
) -> Callable[[Subscriber], Rendered]:
    return lambda subscriber: render(subscriber, matches, digest)


def _others_still_sending(store: DigestClaims, claims: Claims) -> bool:
    """Whether another worker holds a live claim on a pending digest; if so, wait a moment
    (it finishes them, or dies and its lease runs out: then they are claimable)."""
    dead = [w for w in store.live_claimers(claims.clock()) if w != claims.worker and dead_here(w)]
    for worker in dead:
        store.release_claims(worker)
    if dead:
        return True  # claimable now
    until = store.claimed_elsewhere(claims.worker, claims.clock())
    if until is None:
        return False
    left = (until - claims.clock()).total_seconds()
    claims.sleep(min(WAIT_POLL, max(left, 0.01)))
    return True


def _matches_of(
    store: DispatchStore,
    batch: Sequence[OpenDigest],
    subscribers: Mapping[str, Subscriber],
    planned: Mapping[str, list[Match]],
    *,
    rebuilt: dict[Match, Match],
    texts: TextCache,
) -> dict[str, list[Match]]:
    """Each claimed digest's matches by address: as planned here, or ranked again over the
    digest's own papers (a ranking depends on nothing else, so it comes out the same), each
    equal Match given as the one object ``rebuilt`` holds, the papers tokenised into ``texts``."""
    found: dict[str, list[Match]] = {}
    missing: list[tuple[Subscriber, OpenDigest]] = []
    for digest in batch:
        address = address_of(digest.email)
        if address in planned:
            found[address] = planned[address]
        elif address in subscribers:
            missing.append((subscribers[address], digest))
    if missing:
        papers = store.papers_by_key({key for _, d in missing for key in d.papers})
        people = [person for person, _ in missing]
        interests = compile_interests(
            people,
            liked=liked_papers(people, list(papers.values()), store),
            store=store,
            feedback=store,
            texts=texts,
        )
        every_key = set(papers)
        skip = {person.email: every_key.difference(d.papers) for person, d in missing}
        ranked = interests.rank(list(papers.values()), skip=skip)
        for person, digest in missing:
            matches = ranked[person.email].matches
            # the rest of the digest's papers were added as the week's most upvoted
            shown = {match.paper.key for match in matches}
            extra = [
                Match(paper=papers[key], trending=True)
                for key in digest.papers
                if key not in shown and key in papers
            ]
            found[person.address] = [rebuilt.setdefault(m, m) for m in (*matches, *extra)]
    return found
