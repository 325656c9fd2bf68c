"""The run lock of a file store: an ``flock`` on ``<real store path>.lock``, symlink-safe.

The kernel drops an ``flock`` when its process dies, however it dies, so a killed run never
blocks the next one. The lock file is keyed by the store's *real* path, so two names for one store
(a symlink, a bind mount seen through another path) share one lock. It is opened with
``O_NOFOLLOW`` and never truncated: a symlink or hard link planted under the lock's name cannot
make a run write into somebody else's file. While held, its first bytes say who holds it
(``{"pid": N, "since": T}``, padded to :data:`RECORD_SIZE`); a clean release blanks that record,
so a record found on acquiring means its holder died with the lock.

The store file itself is ``flock``-ed too, for as long as the lock is held: a lock file deleted
mid-run (a clean-up script, a careless ``rm``) lets the next run make a new one, but not take the
store, so it can cost a run, never a double send. (SQLite locks with ``fcntl``, which ``flock``
does not touch.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from digest.errors import LockedError, StoreError

RECORD_SIZE = 256
_BLANK = b" " * RECORD_SIZE
UNKNOWN = "pid unknown"
HOLDER_TRIES, HOLDER_PAUSE = 10, 0.05  # a run writes its record right after taking the lock


def lock_path_for(store_path: Path) -> Path:
    """Where the run lock of the store at ``store_path`` lives (beside its real file)."""
    real = Path(os.path.realpath(store_path))
    return real.with_name(real.name + ".lock")


class RunLock:
    """The lock of one store file; :meth:`hold` takes it for a ``with`` block."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self.path = lock_path_for(store_path)
        self.stale: str | None = None
        """Set by :meth:`hold` when it took over the lock of a run that died holding it."""

    @contextlib.contextmanager
    def hold(self, *, now: dt.datetime | None = None) -> Iterator[None]:
        """Hold the lock for the ``with`` block, or raise :class:`LockedError` at once.

        ``now`` only labels the lock for the message another run shows (default: the clock).
        """
        fd = self._open()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(
                    f"another digest run is in progress ({_running_holder(fd)})",
                    where=str(self.store_path),
                    hint="wait for it to finish and try again; the lock "
                    f"({self.path.name}) goes away by itself when that process exits",
                ) from None
            except OSError as exc:
                raise StoreError(
                    f"cannot lock {self.path}: {exc.strerror or exc}",
                    where=str(self.store_path),
                    hint="keep the store on a local disk (file locks may not work over NFS)",
                ) from exc
            store_fd = self._hold_store()
            self.stale = _holder(fd)
            since = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(" ", "seconds")
            record = json.dumps({"pid": os.getpid(), "since": since}).encode()
            os.pwrite(fd, record.ljust(RECORD_SIZE)[:RECORD_SIZE], 0)
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    os.pwrite(fd, _BLANK, 0)
                if store_fd is not None:
                    os.close(store_fd)  # drops its flock
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _hold_store(self) -> int | None:
        """An ``flock`` on the store file itself (None when there is no file yet: nothing to
        send from); LockedError when another run holds it."""
        try:
            store_fd = os.open(os.path.realpath(self.store_path), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(store_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(store_fd)
            raise LockedError(
                "another digest run is in progress: it holds the store itself, though its lock "
                f"file {self.path.name} was removed",
                where=str(self.store_path),
                hint="wait for it to finish and try again; do not remove the lock file of a "
                "running digest",
            ) from None
        except OSError:
            os.close(store_fd)
            return None  # no flock on this filesystem: the lock file alone decides
        return store_fd

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(
                    f"the run lock {self.path} is a symbolic link; refusing to follow it",
                    where=str(self.store_path),
                    hint=f"remove {self.path} (paper-digest creates it as a plain file)",
                ) from exc
            raise StoreError(
                f"cannot create the run lock {self.path}: {exc.strerror or exc}",
                where=str(self.store_path),
                hint="make the store's directory writable",
            ) from exc
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file"
        elif info.st_nlink != 1:
            problem = "has other hard links"
        if problem is not None:
            os.close(fd)
            raise StoreError(
                f"the run lock {self.path} {problem}; refusing to write into it",
                where=str(self.store_path),
                hint=f"remove {self.path} (paper-digest creates it as a plain file of its own)",
            )
        return fd


def _running_holder(fd: int) -> str:
    """The holder's ``pid N since T``, waiting a moment for a run that has just taken the lock
    to write it (it writes right after taking it)."""
    for _ in range(HOLDER_TRIES):
        holder = _holder(fd)
        if holder is not None and holder != UNKNOWN:
            return holder
        time.sleep(HOLDER_PAUSE)
    return UNKNOWN


def _holder(fd: int) -> str | None:
    """``pid N since T`` from a lock file, or None when its record is blank."""
    raw = os.pread(fd, RECORD_SIZE, 0)
    if not raw.strip(b" \x00\n"):
        return None
    try:
        info = json.loads(raw)
        return f"pid {int(info['pid'])} since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return UNKNOWN
