"""Messages as files: an outbox folder of ``.eml`` files, or a Maildir.

Both write the whole message under a temporary name and only then give it its final name, so a
reader never sees a partial file. A digest's file is named after the digest, so delivering it
again after a crash replaces the file instead of adding a second one; that is what lets the
ledger record deliveries in groups. ``flush`` makes a group durable before it is recorded.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import hashlib
import mailbox
import os
import re
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from digest.deliver import Channel, ChannelContext, Closing, utc_now
from digest.deliver.mail import MailChannel
from digest.deliver.message import WireMessage
from digest.errors import DeliveryError, TemporaryDeliveryError
from digest.settings import ChannelOption, LocalPath

Clock = Callable[[], dt.datetime]


class FileChannel:
    """``method = "file"``: each digest an ``.eml`` file in ``[delivery] outbox``."""

    option: ClassVar[ChannelOption] = ChannelOption("outbox", LocalPath, "outbox")

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

    option: ClassVar[ChannelOption] = ChannelOption("maildir", LocalPath, "Maildir")

    @classmethod
    def open(cls, settings: str, context: ChannelContext) -> Channel:
        """A mail channel delivering into the Maildir."""
        return MailChannel(MaildirTransport(context.resolve(settings)), context.message)

    @classmethod
    def target(cls, settings: str, context: ChannelContext) -> str:
        """The Maildir folder."""
        return str(context.resolve(settings))


def _fsync_dir(path: Path) -> None:
    # a rename is durable only once the directory entry is flushed too
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SYNCFS_FROM = 8  # files in a group from which one syncfs beats an fsync each


def _sync(folder: Path, files: list[Path]) -> None:
    """Make ``files`` (written into ``folder``) and their names durable: for a group, one
    ``syncfs`` of the folder's filesystem where Linux has it; else (or for a few files, as a
    store that records each digest at once asks) an fsync each and one of the folder."""
    if not files:
        return
    if len(files) >= SYNCFS_FROM and _syncfs is not None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            if _syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in files:
        with contextlib.suppress(FileNotFoundError):  # replaced since: its successor is listed
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


_syncfs = _load_syncfs() if sys.platform.startswith("linux") else None
_DIGEST_ID = re.compile(r"^<digest\.(?P<day>\d{8})\.(?P<name>[A-Za-z0-9.-]+)@")


def file_stem(message: WireMessage, clock: Clock) -> tuple[str, bool]:
    """The name of a message's file, and whether it is the digest's own (stable) name.

    A digest's message is named by its day, recipient and digest id, so delivering it again
    replaces the same file; any other message is named by the time and its Message-ID.
    """
    who = message.recipients[0] if message.recipients else "unknown"
    slug = re.sub(r"[^a-z0-9.@_-]+", "-", who.casefold()).replace("@", "-at-")[:60]
    ident = message.message_id or uuid.uuid4().hex
    tag = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    found = _DIGEST_ID.match(message.message_id)
    if found:
        return f"{found['day']}-{slug}-{tag}", True
    stamp = clock().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{slug}-{tag}", False


class FileTransport(Closing):
    """Writes each message as an ``.eml`` file into an outbox folder.

    A digest's file is named by its day, recipient and digest (:func:`file_stem`): sent again
    after a crash, it replaces the same file. The bytes go to a hidden temporary file renamed
    into place, so a reader of the outbox never sees a partial file; ``flush`` makes a group of
    files durable with one sync (see :func:`_sync`) before the ledger records them.
    """

    def __init__(self, outbox: Path, *, clock: Clock = utc_now) -> None:
        self.outbox = outbox
        self._clock = clock
        self.last_path: Path | None = None
        self._unsynced: list[Path] = []
        self._tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # temporary names of this run
        self._written = 0
        try:
            outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create the outbox folder: {exc.strerror or exc}",
                where=str(outbox),
                hint="check [delivery].outbox and the folder's permissions",
            ) from exc

    def send(self, message: WireMessage) -> None:
        """Write ``message``; it is complete under its final name when this returns."""
        stem, stable = file_stem(message, self._clock)
        self._written += 1
        tmp = self.outbox / f".tmp-{self._tag}-{self._written}.eml"
        placed = False
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(message.data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if stable:
                final = self.outbox / f"{stem}.eml"
                os.replace(tmp, final)
                placed = True
            else:
                final = _link_unique(self.outbox, tmp, stem)
            self.last_path = final
            self._unsynced.append(final)
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot write the message: {exc.strerror or exc}",
                where=str(self.outbox),
                hint="check free space and permissions of the outbox folder",
            ) from exc
        finally:
            if not placed:
                with contextlib.suppress(OSError):  # the real error, if any, is on its way
                    tmp.unlink(missing_ok=True)

    def flush(self) -> None:
        """Make every file written since the last flush durable."""
        try:
            _sync(self.outbox, self._unsynced)
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot sync the outbox: {exc.strerror or exc}", where=str(self.outbox)
            ) from exc
        self._unsynced.clear()

    def close(self) -> None:
        self.flush()


def _link_unique(folder: Path, tmp: Path, stem: str) -> Path:
    for attempt in range(1000):
        final = folder / (f"{stem}.eml" if attempt == 0 else f"{stem}-{attempt}.eml")
        try:
            os.link(tmp, final)
        except FileExistsError:
            continue
        return final
    raise OSError(f"no free file name for {stem}")


class MaildirTransport(Closing):
    """Delivers each message into a Maildir's ``new/`` (created when missing).

    The file is written in ``tmp/`` and renamed into ``new/``, as the Maildir convention asks, so
    a mail reader never sees a partial message; a digest's file name follows from the digest, so
    a delivery repeated after a crash replaces the message still in ``new/``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._unsynced: list[Path] = []
        self._host = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname()) or "localhost"
        try:
            mailbox.Maildir(path, create=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot open the Maildir: {exc.strerror or exc}",
                where=str(path),
                hint="check [delivery].maildir and the folder's permissions",
            ) from exc

    def send(self, message: WireMessage) -> None:
        """Deliver into ``new/`` by way of ``tmp/``."""
        stem, stable = file_stem(message, utc_now)
        name = f"{stem}.{self._host}" if stable else f"{stem}.{uuid.uuid4().hex[:8]}.{self._host}"
        tmp = self.path / "tmp" / name
        try:
            with open(tmp, "wb") as handle:
                handle.write(message.data.replace(b"\r\n", b"\n"))  # Maildir files use LF
            os.replace(tmp, self.path / "new" / name)
            self._unsynced.append(self.path / "new" / name)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise TemporaryDeliveryError(
                f"cannot add the message: {exc.strerror or exc}",
                where=str(self.path),
                hint="check free space and permissions of the Maildir",
            ) from exc

    def flush(self) -> None:
        """Make every message delivered since the last flush durable."""
        try:
            _sync(self.path / "new", self._unsynced)
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot sync the Maildir: {exc.strerror or exc}", where=str(self.path)
            ) from exc
        self._unsynced.clear()

    def close(self) -> None:
        self.flush()
