"""Operator logging: one stderr handler; timestamps on a terminal, syslog levels in journald.

Verbosity: ``-1`` (``--quiet``) warnings and errors only; ``0`` progress of runs and the daemon;
``1`` (``--verbose``) debug for paper-digest and APScheduler's own progress lines; ``2`` and more,
APScheduler's debug lines too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# journald stamps every line itself and reads a leading <N> as the syslog priority, so
# `journalctl -p warning` works without a timestamp cluttering each entry twice.
JOURNAL_FORMAT = "<%(priority)d>%(levelname)s %(name)s: %(message)s"

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _JournalFormatter(logging.Formatter):
    """Adds ``priority`` (the syslog level) and keeps multi-line messages one entry per line."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _priority(record.levelno)
        record.__dict__["priority"] = priority
        text = super().format(record)
        prefix = f"<{priority}>"
        # Each stderr line becomes its own journal entry: give traceback lines the same level.
        return "\n".join(
            line if i == 0 else prefix + line for i, line in enumerate(text.splitlines())
        )


def _priority(levelno: int) -> int:
    for level in sorted(_SYSLOG_PRIORITY, reverse=True):
        if levelno >= level:
            return _SYSLOG_PRIORITY[level]
    return 7


def stderr_is_journal(env: Mapping[str, str] = os.environ, stream: TextIO = sys.stderr) -> bool:
    """True when ``stream`` is the journald socket systemd advertises in ``$JOURNAL_STREAM``.

    The variable is inherited by child processes whose stderr may be redirected elsewhere, so the
    device and inode it names must be those of ``stream`` itself (what sd_journal recommends).
    """
    value = env.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def configure_logging(
    verbosity: int, *, env: Mapping[str, str] = os.environ, stream: TextIO | None = None
) -> logging.Handler:
    """Send paper-digest's (and APScheduler's) log lines to stderr at the given verbosity.

    Calling it again replaces the handler it installed before; other handlers are left alone.
    Returns the handler, so a caller can remove it.
    """
    target = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(target)
    handler.set_name("paper-digest")
    if stderr_is_journal(env, target):
        handler.setFormatter(_JournalFormatter(JOURNAL_FORMAT))
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "paper-digest"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)

    if verbosity < 0:
        ours, theirs = logging.WARNING, logging.ERROR
    elif verbosity == 0:
        # APScheduler's misfire and max-instance warnings are re-logged by digest.schedule in
        # plain words; its own copies would only repeat them.
        ours, theirs = logging.INFO, logging.ERROR
    elif verbosity == 1:
        ours, theirs = logging.DEBUG, logging.INFO
    else:
        ours, theirs = logging.DEBUG, logging.DEBUG
    logging.getLogger("digest").setLevel(ours)
    logging.getLogger("apscheduler").setLevel(theirs)
    return handler
