"""The Source interface: one ``[[sources]]`` entry -> the papers it holds, read in units of work.

A source kind is a settings model (a :class:`digest.settings.SourceSettings` registered in
:data:`digest.registry.SOURCES`) that also implements :class:`Source`: ``units`` splits it into
independent reads (one API request per day, one file per glob match, one URL), each of which may
fail alone. :func:`read_sources` runs all units with at most ``concurrency`` at once, turns each
failing unit into a ``SourceFailure`` while the others still go through (an error a parser did
not foresee included: it is that unit's failure, in one line, never the run's), collects the entries
skipped inside a unit (a malformed record costs that record, not its file), and de-duplicates
what was read (:func:`digest.identity.merge_papers`).

Everything a unit does to the outside world goes through its :class:`ReadContext`: ``download``
(HTTP with deadline, retries and size cap) and ``read_file`` (regular files only, size cap).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from digest.errors import DigestError, ParseError, SourceError
from digest.identity import merge_papers
from digest.models import Batch, Paper, SourceFailure
from digest.sources.limits import DEFAULT_LIMITS, Limits

__all__ = ["Limits", "ReadContext", "Source", "Unit", "read_sources"]

Skip = Callable[[ParseError], None]
POLL_SECONDS = 0.2  # how often a wait for reads looks whether the run is stopping


@dataclass(frozen=True)
class Unit:
    """One file or URL to read; ``read(skip)`` raises a DigestError when the whole unit fails,
    and reports each entry it had to leave out to ``skip``."""

    label: str
    read: Callable[[Skip], list[Paper]]


class FetchWatcher(Protocol):
    """Told how reading goes, as it goes (the command line's progress display on a terminal)."""

    def started(self, units: int) -> None:
        """The sources are read as ``units`` independent reads."""

    def retrying(self, url: str, why: str, delay: float) -> None:
        """A download failed with ``why`` and is tried again in ``delay`` seconds."""

    def finished(self, label: str, failed: bool) -> None:
        """The read ``label`` is done (``failed``: it gave nothing)."""


@dataclass(frozen=True)
class ReadContext:
    """What units need from outside: the day, the network, the files, the limits."""

    today: dt.date
    download: Callable[[str], bytes]
    read_file: Callable[[Path], bytes]
    resolve: Callable[[str], Path]
    limits: Limits = DEFAULT_LIMITS
    lookback_days: int = 3
    watcher: FetchWatcher | None = None
    cancelled: Callable[[], bool] = lambda: False  # the run is stopping: stop waiting for reads


class Source(Protocol):
    """A configured source: its kind, how reports name it, and the units it reads."""

    @property
    def kind(self) -> str:
        """The ``[[sources]] kind`` it was configured as."""

    @property
    def label(self) -> str:
        """How reports name this source."""

    @property
    def is_bundled(self) -> bool:
        """Whether it reads only the sample pages shipped with the package."""

    def units(self, context: ReadContext) -> list[Unit]:
        """The independent reads this source is made of (SourceError if it has none)."""


def read_sources(sources: Sequence[Source], context: ReadContext, *, concurrency: int = 4) -> Batch:
    """Read every source; one failing unit is one ``SourceFailure``, the rest go through."""
    units: list[Unit] = []
    failures: list[SourceFailure] = []
    for source in sources:
        try:
            units.extend(source.units(context))
        except DigestError as exc:
            failures.append(failure_of(source.label, exc))
    skipped: list[SourceFailure] = []
    lock = threading.Lock()

    def run(unit: Unit) -> list[Paper] | DigestError:
        def skip(error: ParseError) -> None:
            with lock:
                skipped.append(failure_of(unit.label, error))

        try:
            outcome: list[Paper] | DigestError = unit.read(skip)
        except DigestError as exc:
            outcome = exc
        except Exception as exc:
            outcome = ParseError(
                f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})",
                where=unit.label,
                hint="this file or answer is not in a shape paper-digest knows; the other "
                "sources went through",
            )
        if context.watcher is not None:
            with lock:
                context.watcher.finished(unit.label, isinstance(outcome, DigestError))
        return outcome

    if context.watcher is not None:
        context.watcher.started(len(units))
    entries: list[Paper] = []
    for unit, outcome in zip(units, _run_all(units, run, concurrency, context), strict=True):
        if isinstance(outcome, DigestError):
            failures.append(failure_of(unit.label, outcome))
        else:
            entries.extend(outcome)
    return Batch(
        papers=tuple(merge_papers(entries)),
        failures=tuple(failures),
        skipped=tuple(skipped),
        entries=len(entries),
    )


def _run_all(
    units: Sequence[Unit],
    run: Callable[[Unit], list[Paper] | DigestError],
    concurrency: int,
    context: ReadContext,
) -> list[list[Paper] | DigestError]:
    """``run`` over ``units`` on at most ``concurrency`` daemon threads, outcomes in order.

    Daemon threads, polled, so a run asked to stop (SIGTERM to the daemon) stops waiting at
    once: a read that never answers is left to its deadline in the background, and the
    process may exit meanwhile (a thread pool's workers would hold the exit until then).
    """
    outcomes: list[list[Paper] | DigestError | None] = [None] * len(units)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(units)):
        todo.put(index)
    done = threading.Semaphore(0)

    def work() -> None:
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            outcomes[index] = run(units[index])
            done.release()

    for _ in range(min(concurrency, len(units))):
        threading.Thread(target=work, daemon=True, name="digest-read").start()
    finished = 0
    while finished < len(units):
        if done.acquire(timeout=POLL_SECONDS):
            finished += 1
        elif context.cancelled():
            break
    stopped = SourceError("not read: the run is stopping", hint="the next run reads it")
    return [outcome if outcome is not None else stopped for outcome in outcomes]


def failure_of(label: str, error: DigestError) -> SourceFailure:
    """``error`` as a one-line failure of the source (or unit) ``label``."""
    # A parse error may point inside the file ("FILE: entry [3]"): keep that part in the message.
    detail = (error.where or "").removeprefix(label).lstrip(": ")
    message = f"{detail}: {error.message}" if detail else error.message
    return SourceFailure(source=label, message=message, hint=error.hint)
