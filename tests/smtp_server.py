"""A real aiosmtpd server on 127.0.0.1 for the tests: records messages, counts connections,
answers chosen SMTP codes, and can drop every open connection from the server side."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    """One message the server accepted."""

    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Handler:
    """aiosmtpd handler. ``rcpt_answers[address]`` / ``data_answers`` are queues of replies
    given before the address (or the next DATA) is accepted. Hooks get the 1-based number of the
    command: ``on_mail`` runs on MAIL FROM before answering; ``on_data`` runs on DATA before
    answering, and a reply it returns is given instead of accepting (the message is dropped);
    ``after_accept`` runs once the message is kept, before the 250 goes out."""

    rcpt_answers: dict[str, list[str]] = field(default_factory=dict)
    data_answers: list[str] = field(default_factory=list)
    on_mail: Callable[[int], None] | None = None
    on_data: Callable[[int], str | None] | None = None
    after_accept: Callable[[int], None] | None = None
    received: list[Received] = field(default_factory=list)
    mail_commands: int = 0
    data_commands: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        queue = self.rcpt_answers.get(address)
        if queue:
            return queue.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.mail_commands += 1
            number = self.mail_commands
        if self.on_mail is not None:
            self.on_mail(number)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        with self.lock:
            self.data_commands += 1
            number = self.data_commands
        if self.on_data is not None:
            reply = self.on_data(number)
            if reply is not None:
                return reply
        if self.data_answers:
            return self.data_answers.pop(0)
        with self.lock:
            self.received.append(
                Received(
                    peer=tuple(session.peer),
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                )
            )
        if self.after_accept is not None:
            self.after_accept(len(self.received))
        return "250 Message accepted for delivery"


class CountingController(Controller):
    """A Controller that keeps every connection's protocol, to count and to drop them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocols: list[SMTP] = []

    def factory(self) -> SMTP:
        protocol: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self.protocols.append(protocol)
        return protocol

    @property
    def connections(self) -> int:
        return len(self.protocols)

    def drop_connections(self) -> None:
        """Close every open connection from the server side, as an idle timeout would."""
        done = threading.Event()

        def close_all() -> None:
            for protocol in self.protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            done.set()

        self.loop.call_soon_threadsafe(close_all)
        assert done.wait(5)


@contextmanager
def smtp_server(handler: Handler, **smtp_kwargs: Any) -> Iterator[CountingController]:
    """Run aiosmtpd on a free 127.0.0.1 port; ``smtp_kwargs`` go to aiosmtpd's SMTP class."""
    controller = CountingController(
        handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10, **smtp_kwargs
    )
    controller.start()
    controller.protocols.clear()  # start() opens one connection of its own to check readiness
    try:
        yield controller
    finally:
        controller.stop()
