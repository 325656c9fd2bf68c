"""``MailChannel``: the channel of every mail method, a digest built as a message for a transport.

The file outbox, the Maildir and SMTP differ only in their :class:`~.message.Transport`; the
message is built once per digest by :class:`~.wire.WireBuilder` (headers and checks from
:mod:`.message`) and handed over, its Message-ID the receipt the ledger records.
"""

from __future__ import annotations

import datetime as dt

from digest.deliver import Closing, MessageSettings, Outgoing
from digest.deliver.message import Transport, message_id_for
from digest.deliver.wire import WireBuilder


class MailChannel(Closing):
    """A channel that builds each digest's MIME message and hands it to a transport.

    The Message-ID follows from the digest id, so a digest sent again after a crash carries the
    Message-ID of the first attempt (mail systems that de-duplicate by it show it once).
    """

    def __init__(self, transport: Transport, settings: MessageSettings) -> None:
        self.transport = transport
        self.settings = settings
        self._builder: WireBuilder | None = None
        self._builder_now: dt.datetime | None = None

    def send(self, outgoing: Outgoing) -> str:
        """Build and send; the receipt is the message's Message-ID."""
        if self._builder is None or self._builder_now != outgoing.now:
            self._builder, self._builder_now = (
                WireBuilder(self.settings, outgoing.now),
                outgoing.now,
            )
        message = self._builder.build(
            outgoing.rendered,
            outgoing.subscriber,
            message_id_for(outgoing.digest_id, self.settings) or None,
        )
        self.transport.send(message)
        return message.message_id

    @property
    def parallel(self) -> int:  # type: ignore[override]  # the transport's, not a class constant
        """How many messages the transport can take at once (an SMTP pool: its connections)."""
        return self.transport.parallel

    def flush(self) -> None:
        self.transport.flush()

    def close(self) -> None:
        self.transport.close()
