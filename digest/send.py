"""Sending a planned run: each open digest rendered, handed to the channel, recorded in groups.

The order of things is what keeps the promises:

1. the plan is in the store (every digest ``pending``) before anything is sent;
2. a digest the channel accepted is written to the journal at once, then joins the current group;
3. a group is recorded when it is full or old (the store's ``record_every``,
   :data:`GROUP_SECONDS`): the channel makes what it accepted durable (``flush``), then the
   store marks the whole group in one transaction;
4. when the store cannot be written (another process holds it, its disk is full, the database
   is unreachable), the journal is fsynced, sending goes on, the group waits in the journal,
   and the next run on this host records it before it sends anything.

So a process killed at any moment loses nothing and duplicates at most the digests in flight (the
journal had not yet heard of them): one, or with an SMTP pool of ``N`` connections at most
``2 N``. The group accepted but not yet recorded is not sent again: the next run on this host
records it from the journal first. (A shared store records each digest at once, since another
host, which cannot read this one's journal, may take over the rest.) A power cut can also lose
the journal lines of the group being sent, which are then sent again (an outbox file is
replaced, not added)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from digest.deliver import Channel, Outgoing
from digest.errors import (
    ChannelUnavailableError,
    DeliveryError,
    PermanentDeliveryError,
    RecipientRefusedError,
    RenderError,
    StoreError,
)
from digest.models import Match, Rendered, Subscriber
from digest.report import SubscriberOutcome
from digest.store import Accepted, Ledger, OpenDigest, Refused
from digest.store.journal import Journal

GROUP_SECONDS = 2.0

Render = Callable[[Subscriber], Rendered]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _Handed:
    """A digest handed to the channel: what its outcome needs once the channel answers."""

    digest: OpenDigest
    email: str
    matched: int
    answer: Future[str]


@dataclass
class Sending:
    """One run's sends: the outcomes so far, the group not yet recorded, what the store missed.

    A channel that takes several messages at once (``channel.parallel`` > 1: an SMTP pool) gets
    them from a few threads, at most twice as many in flight as it has sessions; rendering,
    the journal and the store stay on the calling thread, and outcomes keep the subscribers'
    order.
    """

    store: Ledger  # the only role of the store sending needs
    channel: Channel
    journal: Journal
    run_id: int
    now: dt.datetime
    clock: Callable[[], float] = time.monotonic
    suspend_after: int | None = None
    recorded: Callable[[], None] | None = None  # called after each group is recorded
    outcomes: list[SubscriberOutcome] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    store_problem: str | None = None
    channel_down: ChannelUnavailableError | None = None  # why nothing more is sent this run
    _accepted: list[Accepted] = field(default_factory=list)
    _refused: list[Refused] = field(default_factory=list)
    _since: float = 0.0
    _in_flight: deque[_Handed] = field(default_factory=deque)
    _workers: ThreadPoolExecutor | None = None
    _recording: bool = True

    def send(
        self,
        subscriber: Subscriber,
        digest: OpenDigest,
        render: Render,
        matches: Sequence[Match],
        *,
        matched: int,
        day: dt.date,
    ) -> None:
        """Render and send one digest; its outcome joins :attr:`outcomes` (at once, or when the
        channel answers if it sends in parallel)."""
        email = subscriber.email
        if self.channel_down is not None:
            self.hold_back(digest, "owed: the channel is unavailable", neutral=True)
            return
        try:
            rendered = render(subscriber)
        except RenderError as exc:
            self._refuse(digest, email, matched, exc)
            return
        listed = {match.paper.key: match for match in matches}
        outgoing = Outgoing(
            subscriber=subscriber,
            rendered=rendered,
            day=day,
            now=self.now,
            digest_id=digest.digest_id,
            matches=tuple(listed[k] for k in rendered.paper_keys if k in listed),
        )
        parallel = self.channel.parallel
        if parallel <= 1:
            answer: Future[str] = Future()
            try:
                answer.set_result(self.channel.send(outgoing))
            except DeliveryError as exc:
                answer.set_exception(exc)
            self._complete(_Handed(digest, email, matched, answer))
            return
        if self._workers is None:
            self._workers = ThreadPoolExecutor(parallel, thread_name_prefix="digest-send")
        self._in_flight.append(
            _Handed(digest, email, matched, self._workers.submit(self.channel.send, outgoing))
        )
        while len(self._in_flight) >= 2 * parallel or (
            self._in_flight and self._in_flight[0].answer.done()
        ):
            self._complete(self._in_flight.popleft())

    def _complete(self, handed: _Handed) -> None:
        digest, email = handed.digest, handed.email
        try:
            receipt = handed.answer.result()
        except DeliveryError as exc:
            self._refuse(digest, email, handed.matched, exc)
            return
        accepted = Accepted(digest.row, email, receipt, digest.papers)
        self.journal.append(accepted, self.run_id)
        self._accepted.append(accepted)
        self.outcomes.append(
            SubscriberOutcome(email, handed.matched, len(digest.papers), sent=True)
        )
        self._maybe_record()

    def _refuse(
        self, digest: OpenDigest, email: str, matched: int, exc: DeliveryError | RenderError
    ) -> None:
        if isinstance(exc, ChannelUnavailableError):
            # the server's or the config's fault, not this reader's: stop sending, owe it all
            self.channel_down = self.channel_down or exc
            self.hold_back(digest, "owed: the channel is unavailable", neutral=True)
            return
        permanent = isinstance(exc, PermanentDeliveryError | RenderError)
        bounced = isinstance(exc, RecipientRefusedError)
        self._refused.append(Refused(digest.row, email, str(exc), bounced))
        self.outcomes.append(
            SubscriberOutcome(
                email, matched, len(digest.papers), error=str(exc), permanent=permanent
            )
        )
        self._maybe_record()

    def hold_back(self, digest: OpenDigest, reason: str, *, neutral: bool = False) -> None:
        """Record a claimed digest as not sent this run (it stays owed), for ``reason``;
        ``neutral``: through nobody's fault (the channel is down), counted apart in the
        summary rather than as one failure per subscriber."""
        self._refused.append(Refused(digest.row, digest.email, reason, neutral=neutral))
        self.outcomes.append(
            SubscriberOutcome(
                digest.email,
                digest.matched,
                len(digest.papers),
                error=None if neutral else reason,
                skipped=reason if neutral else None,
                kind="owed" if neutral else None,
            )
        )
        self._maybe_record()

    def abandon(self) -> None:
        """The run is failing: wait for the digests in flight and journal those accepted (the
        next run records them), without touching the store."""
        self._recording = False
        with contextlib.suppress(Exception):
            self._drain()

    def _drain(self) -> None:
        """Wait for every digest in flight and take its outcome."""
        try:
            while self._in_flight:
                self._complete(self._in_flight.popleft())
        finally:
            if self._workers is not None:
                self._workers.shutdown(wait=True, cancel_futures=True)
                self._workers = None

    def _maybe_record(self) -> None:
        if not self._recording:
            return
        pending = len(self._accepted) + len(self._refused)
        if not self._since:
            self._since = self.clock()
        if pending >= self.store.record_every or self.clock() - self._since >= GROUP_SECONDS:
            self.record()

    def record(self) -> None:
        """Record the current group (see the module docstring for the order of things)."""
        self._since = 0.0
        if not (self._accepted or self._refused):
            return
        try:
            self.channel.flush()
            self.store.mark_sent(self.run_id, self._accepted, self.now)
            self._accepted.clear()
            self.suspended += self.store.mark_failed(
                self.run_id, self._refused, self.now, suspend_after=self.suspend_after
            )
            self._refused.clear()
            self.store_problem = None
        except StoreError as exc:
            # The sends stand: the journal has them (made durable now), and the next run records
            # them before it sends anything.
            self.journal.sync()
            self.store_problem = str(exc)
            return
        except DeliveryError as exc:
            self.store_problem = f"the channel could not make its deliveries durable: {exc}"
            return
        if self.recorded is not None:
            self.recorded()

    @property
    def unrecorded(self) -> int:
        """Accepted digests the store has not recorded (they wait in the journal)."""
        return len(self._accepted)

    def finish(self) -> bool:
        """Wait for what is in flight, record what is left; whether everything accepted is in
        the store."""
        self._drain()
        self.record()
        recorded = not self._accepted
        self.journal.close(recorded=recorded)
        return recorded
