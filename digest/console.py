"""What the command line prints: table rows, problem lines on stderr, notes, progress, prompts.

Results go to stdout; errors, problems and notes to stderr, so ``digest run > /dev/null`` in cron
still mails exactly the lines that matter. Progress is shown only on a terminal.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Never

from digest.errors import UsageError

if TYPE_CHECKING:
    from digest.store import SubscriberState

Progress = Callable[[int, int], None]


def paper_row(key: str, day: dt.date | None, number: int | None, title: str) -> str:
    """One row of ``fetch`` and ``seen list``: key, date, a count, the title (shortened)."""
    shown = title if len(title) <= 80 else title[:79] + "…"
    date = day.isoformat() if day else ""
    count = "" if number is None else str(number)
    return f"{key:<22} {date:<10} {count:>5}  {shown}"


def paper_header(date: str, number: str) -> str:
    """The column headers over :func:`paper_row`'s rows."""
    return f"{'KEY':<22} {date:<10} {number:>5}  TITLE"


def verdict_row(key: str, verdict: str, title: str) -> str:
    """One row of ``feedback list``: key, the verdict in words, the title (shortened)."""
    shown = title if len(title) <= 80 else title[:79] + "…"
    return f"{key:<22} {verdict:<16} {shown}"


def subscriber_header() -> str:
    """The column headers of ``subscribers list``."""
    return f"{'EMAIL':<32} {'STATUS':<12} {'EVERY':<6} {'LAST SENT':<10} {'DIGESTS':>7} " + (
        f"{'PAPERS':>7}  LAST ERROR"
    )


def subscriber_row(
    email: str, frequency: str, state: SubscriberState | None, *, note: str = ""
) -> str:
    """One row of ``subscribers list``: status, cadence, last digest, totals, last error."""
    if state is None:
        status, last, digests, papers, error = "active", "", 0, 0, ""
    else:
        status, last = state.status, (state.last_sent or "")[:10]
        digests, papers, error = state.digests_sent, state.papers_received, state.last_error or ""
    every = {"daily": "day", "weekly": "week", "monthly": "month"}.get(frequency, frequency)
    if state is not None and state.status == "suspended" and not note:
        # why and since when, so a mistake (a mail server down, not an address) shows at once
        why = f"since {(state.changed or '')[:10]}, {state.how or 'suspended'}"
        error = f"{why}: {error}" if error else why
    error = note or (error if len(error) <= 100 else error[:99] + "…")
    return f"{email:<32} {status:<12} {every:<6} {last:<10} {digests:>7} {papers:>7}  {error}"


def problem(line: str) -> None:
    """A problem an operator must see (a failed source, a skipped entry): on stderr."""
    print(f"digest: {line}", file=sys.stderr)


def problems(lines: Iterable[str]) -> None:
    """Each of ``lines`` as a :func:`problem`."""
    for line in lines:
        problem(line)


def note(text: str) -> None:
    """Advice that is not an error: on stderr, so redirected output stays clean."""
    print(f"digest: note: {text}", file=sys.stderr)


def progress_bar(label: str) -> Progress | None:
    """A tqdm bar on stderr counting ``label`` when it is a terminal (None otherwise: cron,
    journald, a pipe)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bars: list[tqdm[Never]] = []

    def show(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=f"digest: {label}", unit="", file=sys.stderr))
        bar = bars[0]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return show


class FetchProgress:
    """Reading shown on a terminal: a tqdm bar of the reads done, each retry printed above it
    as it happens (so ten seconds of backing off are not ten seconds of silence)."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bar: tqdm[Never] | None = None

    def started(self, units: int) -> None:
        if units:
            self._bar = self._tqdm(total=units, desc="digest: reading", unit="", file=sys.stderr)

    def retrying(self, url: str, why: str, delay: float) -> None:
        self._tqdm.write(f"digest: {url}: {why}; trying again in {delay:.1f} s", file=sys.stderr)

    def finished(self, label: str, failed: bool) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if self._bar.n >= (self._bar.total or 0):
                self._bar.close()


def fetch_progress() -> FetchProgress | None:
    """A :class:`FetchProgress` when stderr is a terminal, else None."""
    return FetchProgress() if sys.stderr.isatty() else None


def confirm(question: str) -> bool:
    """Ask on the terminal; without one, refuse (the caller's ``--yes`` skips the question)."""
    if not sys.stdin.isatty():
        raise UsageError("refusing without confirmation", hint="pass --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
