"""One SMTP session with deadlines, and the knowledge of when a message's data was all sent.

smtplib's timeout bounds each socket read, so a server that sends its greeting (or any answer)
one byte a second holds a session for as long as it likes. :class:`Watchdog` bounds a whole step
instead: it shuts the session's socket down when the step's deadline passes, which wakes the
blocked read; the step then fails as "no answer within N s". The socket is registered the moment
smtplib creates it, so the greeting is covered too.

:class:`Session` also notes when the final ``.`` of a message's data has gone out: after that a
dropped connection leaves the outcome unknown (the server may have kept the message), and the
message must not be sent again in the same run. :class:`Retry` is how a failed attempt says
whether another may help.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import threading
from collections.abc import Iterator
from typing import Any


class Watchdog:
    """Shuts a registered socket down when the step in progress outlives its deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer: threading.Timer | None = None
        self.fired = False

    def watch(self, sock: socket.socket) -> None:
        """The socket the current and later steps run on."""
        with self._lock:
            self._socket = sock

    @contextlib.contextmanager
    def step(self, seconds: float) -> Iterator[None]:
        """Run the ``with`` block with a deadline of ``seconds``."""
        self.fired = False
        timer = threading.Timer(seconds, self._fire)
        timer.daemon = True
        with self._lock:
            self._timer = timer
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            with self._lock:
                self._timer = None

    def _fire(self) -> None:
        with self._lock:
            sock = self._socket
            self.fired = True
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Noting:
    """Mix-in for smtplib's classes: register the socket, note when the data is all sent."""

    watchdog: Watchdog
    data_sent: bool

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.watchdog.watch(sock)
        return sock

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        reply: tuple[int, bytes] = super().starttls(*args, **kwargs)  # type: ignore[misc]
        self.watchdog.watch(self.sock)  # type: ignore[attr-defined]  # the TLS socket now
        return reply

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        # smtplib sends a message's data, dot-stuffed, as one string ending in CRLF . CRLF
        if isinstance(s, bytes | str) and s[-5:] in (b"\r\n.\r\n", "\r\n.\r\n"):
            self.data_sent = True


class Session(_Noting, smtplib.SMTP):
    """A plain or STARTTLS session with a watchdog."""

    def __init__(self, watchdog: Watchdog, **kwargs: Any) -> None:
        self.watchdog = watchdog
        self.data_sent = False
        super().__init__(**kwargs)


class TlsSession(_Noting, smtplib.SMTP_SSL):
    """An implicit-TLS session (port 465) with a watchdog."""

    def __init__(self, watchdog: Watchdog, **kwargs: Any) -> None:
        self.watchdog = watchdog
        self.data_sent = False
        super().__init__(**kwargs)


SmtpSession = Session | TlsSession


class Retry(Exception):
    """An attempt failed in a way another attempt may fix.

    ``unreachable``: the server itself could not be reached, so when the retries run out the
    transport stops trying for the rest of the run. ``final``: do not retry at all (the message
    may have been delivered, or the server is too slow to be worth asking again).
    """

    def __init__(
        self,
        reason: str,
        *,
        hint: str | None = None,
        unreachable: bool = False,
        final: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.unreachable = unreachable
        self.final = final


def reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
