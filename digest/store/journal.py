"""The journal of accepted digests: what a channel took, kept until the store has recorded it.

A digest accepted by the channel is written here at once (one line of JSON), before the store
is asked to record it; the store records accepted digests in groups. So when the store cannot
be written (locked by another process, its disk full) or the process dies before the group is
recorded, the next run finds the digest here, records it as sent (:func:`reconcile`), and does
not send it again. Each run writes its own journal file (``<prefix>-<pid>-<random>.journal``),
holds an ``flock`` on it while it lives, and deletes it once everything in it is in the store;
a file nobody holds is a leftover to reconcile.

The space is reserved when the journal is opened (``posix_fallocate``), so writing it cannot
fail for a full disk in the middle of a run: a run that cannot reserve it sends nothing.
Durability: lines are written at once (a killed process loses none) and fsynced before each group
is recorded in the store (a power cut can lose only the lines of the group being sent).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from digest.errors import StoreError
from digest.store import Accepted, Ledger

BYTES_PER_ENTRY = 512


class Journal:
    """This run's journal file, open for appending accepted digests."""

    def __init__(self, path: Path, fd: int, reserved: int) -> None:
        self.path = path
        self._fd = fd
        self._offset = 0
        self._reserved = reserved
        self.entries: list[Accepted] = []

    @classmethod
    def open(cls, prefix: Path, entries: int) -> Journal:
        """A new journal beside ``prefix`` with room for ``entries``; StoreError when the disk
        has no room for it (then nothing may be sent: nothing could be recorded)."""
        path = prefix.with_name(f"{prefix.name}-{os.getpid()}-{secrets.token_hex(4)}.journal")
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        reserved = max(entries, 16) * BYTES_PER_ENTRY
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise _error(path, "create the journal", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.posix_fallocate(fd, 0, reserved)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise _error(path, "reserve space for the journal", exc) from exc
        return cls(path, fd, reserved)

    def append(self, accepted: Accepted, run_id: int) -> None:
        """Note that ``accepted`` was accepted (before the store is told)."""
        line = json.dumps(
            {"row": accepted.row, "email": accepted.email, "receipt": accepted.receipt,
             "papers": list(accepted.papers), "run": run_id},
            separators=(",", ":"),
        ).encode() + b"\n"  # fmt: skip
        try:
            if self._offset + len(line) > self._reserved:
                # Past the reservation the disk may refuse; reserve more while it still can.
                os.posix_fallocate(self._fd, 0, self._reserved * 2)
                self._reserved *= 2
            os.pwrite(self._fd, line, self._offset)
        except OSError as exc:
            raise _error(self.path, "write the journal", exc) from exc
        self._offset += len(line)
        self.entries.append(accepted)

    def sync(self) -> None:
        """Make every line written so far survive a power cut."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise _error(self.path, "sync the journal", exc) from exc

    def close(self, *, recorded: bool) -> None:
        """Close (again is harmless); with ``recorded`` (the store has everything), delete it."""
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):
            if recorded:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
        self._fd = -1


def read_entries(path: Path) -> list[Accepted]:
    """The entries of a journal file (the reserved tail and a torn last line are skipped)."""
    data = path.read_bytes().split(b"\0", 1)[0]
    entries: list[Accepted] = []
    for line in data.splitlines():
        try:
            item = json.loads(line)
            entries.append(
                Accepted(
                    int(item["row"]),
                    str(item["email"]),
                    str(item["receipt"]),
                    tuple(str(k) for k in item.get("papers", ())),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash: its digest is sent again, never lost
    return entries


def leftovers(prefix: Path) -> Iterator[tuple[Path, int]]:
    """Journal files of ``prefix`` no running process holds, each with an open, locked fd."""
    for path in sorted(prefix.parent.glob(f"{prefix.name}-*.journal")):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # its run is still going
            continue
        yield path, fd


def reconcile(store: Ledger, prefix: Path, run_id: int, now: dt.datetime) -> int:
    """Record the digests of leftover journals as sent, then delete them; how many were new.

    Raises StoreError (and keeps the journals) when the store cannot record them: a run must
    not send before what earlier runs sent is recorded.
    """
    recorded = 0
    for path, fd in leftovers(prefix):
        try:
            entries = read_entries(path)
            recorded += store.mark_sent(run_id, entries, now) if entries else 0
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return recorded


def _error(path: Path, action: str, exc: OSError) -> StoreError:
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return StoreError(
        f"cannot {action}: {exc.strerror or exc}",
        where=str(path),
        hint="free space on the store's disk; nothing was sent"
        if full
        else "make the store's folder writable",
    )


def unrecorded(journal: Journal, recorded: Sequence[Accepted]) -> list[Accepted]:
    """The journal's entries not among ``recorded``."""
    done = {item.row for item in recorded}
    return [item for item in journal.entries if item.row not in done]
