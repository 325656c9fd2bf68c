"""Readers' status changes (a one-click unsubscribe) kept in a file while the store is busy.

A run can hold a SQLite store for seconds at a time; a mail provider's one-click POST that
arrives then must not be lost, nor kept waiting until it gives up. ``digest serve`` appends the
change to ``<journal>.status`` (one JSON line, fsynced, under an ``flock``) and answers at once;
the change reaches the store as soon as it is free: ``serve`` tries again every second, and every
run applies what waits before it plans. Applying takes the file aside first (renamed under the
lock), so a change added meanwhile waits for the next pass instead of being lost; a pass that
fails leaves what it took for the next one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from digest.errors import StoreError
from digest.store import Ledger


@dataclass(frozen=True)
class StatusChange:
    """One reader's change: who, to what status, how it was asked, and when."""

    email: str
    status: str
    how: str
    when: dt.datetime


class StatusQueue:
    """The changes waiting for the store at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._taken = path.with_name(path.name + ".taken")
        self._lock = path.with_name(path.name + ".lock")

    @classmethod
    def of(cls, store: Ledger) -> StatusQueue:
        """The queue beside ``store``'s journal (the same host, the same store)."""
        journal = store.journal_path
        return cls(journal.with_name(journal.name.removesuffix(".journal") + ".status"))

    def add(self, change: StatusChange) -> None:
        """Keep ``change`` durably until the store takes it."""
        line = json.dumps(
            {"email": change.email, "status": change.status, "how": change.how,
             "when": change.when.isoformat()}
        )  # fmt: skip
        try:
            with self._locked():
                fd = os.open(
                    self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
                )
                try:
                    os.write(fd, line.encode("utf-8") + b"\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise StoreError(
                f"cannot keep the change for later: {exc.strerror or exc}", where=str(self.path)
            ) from exc

    def waiting(self) -> list[StatusChange]:
        """The changes not yet in the store, oldest first."""
        return [*_read(self._taken), *_read(self.path)]

    def apply(self, store: Ledger) -> int:
        """Hand every waiting change to ``store``, oldest first; how many. A StoreError (still
        busy) leaves them waiting."""
        if not (self.path.exists() or self._taken.exists()):
            return 0  # the usual case: nothing waits, and no lock file is made
        with self._locked():
            if self.path.exists():
                if self._taken.exists():
                    with self._taken.open("ab") as taken:
                        taken.write(self.path.read_bytes())
                    self.path.unlink()
                else:
                    os.replace(self.path, self._taken)
        changes = _read(self._taken)
        for change in changes:
            store.set_subscriber_status(change.email, change.status, change.how, change.when)
        with contextlib.suppress(FileNotFoundError):
            self._taken.unlink()
        return len(changes)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _read(path: Path) -> list[StatusChange]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    changes = []
    for line in text.splitlines():
        try:
            raw = json.loads(line)
            when = dt.datetime.fromisoformat(str(raw["when"]))
            changes.append(
                StatusChange(str(raw["email"]), str(raw["status"]), str(raw["how"]), when)
            )
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash mid-write: the rest still counts
    return changes
