"""When a monthly digest is due and which days it covers: date arithmetic, nothing else.

A monthly reader names a day of the month (``day``, default 1); in a month too short for it the
digest goes out on the month's last day (``day = 31``: 31 January, 28 February, 31 March).
"""

from __future__ import annotations

import calendar
import datetime as dt


def due_day(year: int, month: int, day_of_month: int) -> dt.date:
    """The day a monthly digest goes out in ``year``-``month``."""
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day_of_month, last))


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def latest_due(day: dt.date, day_of_month: int) -> dt.date:
    """The last day on or before ``day`` that a monthly digest was due."""
    this_month = due_day(day.year, day.month, day_of_month)
    if this_month <= day:
        return this_month
    return due_day(*_month_before(day.year, day.month), day_of_month)


def previous_due(day: dt.date, day_of_month: int) -> dt.date:
    """The due day before the one of ``day``'s month (the start of the period ``day`` closes)."""
    return due_day(*_month_before(day.year, day.month), day_of_month)
