"""Messages as files: an outbox folder of ``.eml`` files, or a Maildir.

Both write the whole message under a temporary name, fsync it, and only then give it its final
name (a hard link, or Maildir's rename from ``tmp/`` to ``new/``), so a reader never sees a partial
file; ``send`` returns once the file and its directory entry are on disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import mailbox
import os
import re
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import ClassVar

from digest.deliver import Channel, ChannelContext, Closing, utc_now
from digest.deliver.message import MailChannel
from digest.errors import DeliveryError, TemporaryDeliveryError
from digest.settings import ChannelOption

Clock = Callable[[], dt.datetime]


class FileChannel:
    """``method = "file"``: each digest an ``.eml`` file in ``[delivery] outbox``."""

    option: ClassVar[ChannelOption] = ChannelOption("outbox", str, "outbox")

    @classmethod
    def open(cls, settings: str, context: ChannelContext) -> Channel:
        """A mail channel writing into the outbox folder."""
        return MailChannel(
            FileTransport(context.resolve(settings), clock=context.clock), context.message
        )

    @classmethod
    def target(cls, settings: str, context: ChannelContext) -> str:
        """The outbox folder."""
        return str(context.resolve(settings))


class MaildirChannel:
    """``method = "maildir"``: each digest a message in ``[delivery] maildir``'s ``new/``."""

    option: ClassVar[ChannelOption] = ChannelOption("maildir", str, "Maildir")

    @classmethod
    def open(cls, settings: str, context: ChannelContext) -> Channel:
        """A mail channel delivering into the Maildir."""
        return MailChannel(MaildirTransport(context.resolve(settings)), context.message)

    @classmethod
    def target(cls, settings: str, context: ChannelContext) -> str:
        """The Maildir folder."""
        return str(context.resolve(settings))


def _fsync_dir(path: Path) -> None:
    # a rename or link is durable only once the directory entry is flushed too
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileTransport(Closing):
    """Writes each message as ``<UTC time>-<recipient>-<id hash>.eml`` into an outbox folder.

    The bytes go to a hidden temporary file that is fsynced, then hard-linked to its final name,
    which fails rather than overwrites when the name exists: a reader of the outbox never sees a
    partial file, and no message ever replaces another.
    """

    def __init__(self, outbox: Path, *, clock: Clock = utc_now) -> None:
        self.outbox = outbox
        self._clock = clock
        self.last_path: Path | None = None
        try:
            outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create the outbox folder: {exc.strerror or exc}",
                where=str(outbox),
                hint="check [delivery].outbox and the folder's permissions",
            ) from exc

    def send(self, message: EmailMessage) -> None:
        """Write ``message`` durably; returns the moment it is complete on disk."""
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        stem = self._stem(message)
        tmp = self.outbox / f".tmp-{uuid.uuid4().hex}.eml"
        try:
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.last_path = self._link_unique(tmp, stem)
            _fsync_dir(self.outbox)
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot write the message: {exc.strerror or exc}",
                where=str(self.outbox),
                hint="check free space and permissions of the outbox folder",
            ) from exc
        finally:
            with contextlib.suppress(OSError):  # the real error, if any, is already on its way
                tmp.unlink(missing_ok=True)

    def _stem(self, message: EmailMessage) -> str:
        stamp = self._clock().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        recipients = getaddresses([str(v) for v in message.get_all("To", [])])
        who = recipients[0][1] if recipients else "unknown"
        slug = re.sub(r"[^a-z0-9.@_-]+", "-", who.casefold()).replace("@", "-at-")[:60]
        ident = str(message.get("Message-ID", "")) or uuid.uuid4().hex
        digest = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        return f"{stamp}-{slug}-{digest}"

    def _link_unique(self, tmp: Path, stem: str) -> Path:
        for attempt in range(1000):
            final = self.outbox / (f"{stem}.eml" if attempt == 0 else f"{stem}-{attempt}.eml")
            try:
                os.link(tmp, final)
            except FileExistsError:
                continue
            return final
        raise OSError(f"no free file name for {stem}")


class MaildirTransport(Closing):
    """Adds each message to a Maildir (``new/``), created when missing, and fsyncs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._box = mailbox.Maildir(path, create=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot open the Maildir: {exc.strerror or exc}",
                where=str(path),
                hint="check [delivery].maildir and the folder's permissions",
            ) from exc

    def send(self, message: EmailMessage) -> None:
        """Deliver into ``new/``; mailbox writes to ``tmp/`` first, so readers see whole files."""
        try:
            key = self._box.add(message)
            # mailbox.Maildir does not fsync; without it a power cut could lose an "accepted" mail
            # Maildir.add() files a message without flags as new/<key>
            fd = os.open(self.path / "new" / key, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.path / "new")
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot add the message: {exc.strerror or exc}",
                where=str(self.path),
                hint="check free space and permissions of the Maildir",
            ) from exc
