"""An in-memory mail channel for the tests (not shipped): instead of hand-written fake transports.

:class:`MemoryTransport` keeps every message it accepts, and can be told to refuse: with
``fail`` (an exception, or a callable deciding per message) it raises instead of accepting, as
a real server would. It is a real :class:`~digest.deliver.message.Transport`, so a
:class:`~digest.deliver.mail.MailChannel` on it builds exactly the messages SMTP would send.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

from digest.deliver import Closing, MessageSettings
from digest.deliver.mail import MailChannel
from digest.deliver.message import Transport, WireMessage
from digest.errors import DeliveryError

Refusal = DeliveryError | Callable[[WireMessage], DeliveryError | None] | None


class MemoryTransport(Closing):
    """Accepts messages into :attr:`sent` (or refuses them, see ``fail``); with ``then``, an
    accepted message is also handed to that transport (a real outbox, say)."""

    def __init__(self, fail: Refusal = None, *, then: Transport | None = None) -> None:
        self.sent: list[WireMessage] = []
        self.attempts = 0
        self.fail = fail
        self.then = then
        self.closed = False

    def send(self, message: WireMessage) -> None:
        """Accept ``message``, or raise the refusal ``fail`` gives for it."""
        self.attempts += 1
        refusal = self.fail(message) if callable(self.fail) else self.fail
        if refusal is not None:
            raise refusal
        if self.then is not None:
            self.then.send(message)
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True
        if self.then is not None:
            self.then.close()

    def recipients(self) -> list[str]:
        """The recipient of every accepted message, in order."""
        return [message.recipients[0] for message in self.sent]

    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed."""
        return [message.parsed() for message in self.sent]


def memory_channel(
    settings: MessageSettings | None = None,
    *,
    fail: Refusal = None,
    then: Transport | None = None,
) -> tuple[MailChannel, MemoryTransport]:
    """A mail channel on a fresh :class:`MemoryTransport`, and that transport."""
    transport = MemoryTransport(fail, then=then)
    return MailChannel(transport, settings or MessageSettings()), transport


def refuse(address_part: str, error: DeliveryError) -> Refusal:
    """A ``fail`` that refuses messages whose To: contains ``address_part`` with ``error``."""

    def decide(message: WireMessage) -> DeliveryError | None:
        return error if any(address_part in r for r in message.recipients) else None

    return decide
