"""Several SMTP sessions at once, under one rate limit and one back-off.

Providers throttle: Gmail, Amazon SES and others cap messages per second or per minute, and
answer 4xx beyond it. :class:`SmtpPool` holds ``connections`` sessions (each an
:class:`~digest.deliver.smtp.SmtpTransport` on its own connection) that the run's sending threads
borrow one message at a time. Every message waits for a slot of the :class:`RateLimit` (evenly
spaced, so a minute never holds more than ``max_per_minute``), and a 4xx answer on any session
pauses all of them (:class:`Backoff`): the pool slows down as one client, as the provider sees
it. Each digest is still handed over once; a server found unreachable stops the whole pool for
the run, as it stops a single session.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from digest.deliver import Closing
from digest.deliver.message import WireMessage
from digest.errors import DeliveryError

if TYPE_CHECKING:
    from digest.deliver.smtp import SmtpTransport

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class RateLimit:
    """At most ``per_minute`` messages a minute, spaced evenly (thread-safe)."""

    def __init__(
        self, per_minute: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()

    def wait(self) -> float:
        """Return when the next message may go; the time (on the clock) of the slot it took."""
        with self._lock:
            now = self._clock()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)
        return slot


class Backoff:
    """A pause every session respects: set by the one that met a 4xx (thread-safe)."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every session back for ``seconds`` from now (a longer pause wins)."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def wait(self) -> None:
        """Return once no pause is in force."""
        while True:
            with self._lock:
                left = self._until - self._clock()
            if left <= 0:
                return
            self._sleep(left)


class SmtpPool(Closing):
    """``connections`` SMTP sessions behind one transport interface, for sending threads."""

    def __init__(
        self,
        transports: list[SmtpTransport],
        *,
        limit: RateLimit | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.transports = transports
        self.parallel = len(transports)
        self._free: queue.SimpleQueue[SmtpTransport] = queue.SimpleQueue()
        for transport in transports:
            self._free.put(transport)
        self._limit = limit
        self._backoff = backoff
        self._broken: DeliveryError | None = None

    @property
    def connections(self) -> int:
        """Sessions opened so far, over all the pool's connections."""
        return sum(t.connections for t in self.transports)

    def send(self, message: WireMessage) -> None:
        """Send ``message`` on a free session, once a rate-limit slot and any pause allow."""
        if self._broken is not None:
            raise type(self._broken)(
                f"not tried: {self._broken.message}", where=self._broken.where
            ) from self._broken
        transport = self._free.get()
        try:
            if self._backoff is not None:
                self._backoff.wait()
            if self._limit is not None:
                self._limit.wait()
            transport.send(message)
        except DeliveryError:
            if transport.broken is not None:
                self._broken = transport.broken
            raise
        finally:
            self._free.put(transport)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
