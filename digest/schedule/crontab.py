"""The crontab dialect of ``[schedule] cron``: five fields read the way cron reads them.

Weekday ``0`` and ``7`` are Sunday and ``1-5`` is Monday to Friday (APScheduler 3.x alone would
read that as Tuesday to Saturday). A sixth field in front is seconds, for schedules that fire every
few seconds. ``@daily`` and friends are shorthands (``@reboot`` is not a schedule). Where cron and
APScheduler cannot agree (both day-of-month and weekday restricted: cron runs when *either*
matches) the expression is refused rather than run on different days than written.

:func:`parse_crontab` needs nothing but the text, so the config can be checked without importing
the scheduler; :mod:`digest.schedule.daemon` turns the result into an APScheduler trigger.
"""

from __future__ import annotations

from dataclasses import dataclass

CRON_FIELDS = ("minute", "hour", "day", "month", "weekday")
_FIELD_HELP = "expected 5 fields (minute hour day month weekday)"
_BOUNDS = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day": (1, 31),
    "month": (1, 12),
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Index = crontab weekday number (0 = Sunday); APScheduler 3.x reads these names unambiguously.
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronFields:
    """A checked schedule as APScheduler 3.x ``CronTrigger`` keyword arguments."""

    second: str
    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str

    def as_trigger_arguments(self) -> dict[str, str]:
        """The fields by their ``CronTrigger`` names."""
        return {
            "second": self.second,
            "minute": self.minute,
            "hour": self.hour,
            "day": self.day,
            "month": self.month,
            "day_of_week": self.day_of_week,
        }


def parse_crontab(expr: str) -> CronFields:
    """The fields of a five-field crontab, or six whose first is seconds, or a shorthand.

    Raises ValueError with a message fit to follow ``schedule.cron:`` in a config error.
    """
    text = " ".join(expr.split())
    if not text:
        raise ValueError(f"is empty; {_FIELD_HELP}, e.g. '0 7 * * 1-5'")
    if text.startswith("@"):
        if text.lower() not in _SHORTHANDS:
            known = ", ".join(_SHORTHANDS)
            raise ValueError(f"unknown shorthand {text!r}; use one of {known}, or five fields")
        text = _SHORTHANDS[text.lower()]
    values = text.split()
    if len(values) == 5:
        names: tuple[str, ...] = CRON_FIELDS
    elif len(values) == 6:
        names = ("second", *CRON_FIELDS)
    else:
        raise ValueError(
            f"{_FIELD_HELP}, got {len(values)}; six fields are read as seconds first, "
            "e.g. '*/3 * * * * *' for every 3 seconds"
        )
    written = dict(zip(names, values, strict=True))
    if not written["day"].startswith("*") and not written["weekday"].startswith("*"):
        raise ValueError(
            f"both day ({written['day']}) and weekday ({written['weekday']}) are restricted; cron "
            "would run when either matches, the daemon only when both do: set one of them to *"
        )
    fields = {name: _numeric_field(name, written[name]) for name in names if name != "weekday"}
    return CronFields(
        second=fields.get("second", "0"),
        minute=fields["minute"],
        hour=fields["hour"],
        day=fields["day"],
        month=fields["month"],
        day_of_week=_weekdays(written["weekday"]),
    )


def _numeric_field(name: str, field: str) -> str:
    """A minute/hour/day/month/second field checked and written for APScheduler."""
    low, high = _BOUNDS[name]
    parts: list[str] = []
    for part in field.split(","):
        body, slash, step_text = part.partition("/")
        if slash and (not step_text.isdigit() or int(step_text) == 0):
            raise ValueError(
                f"{name} field {field!r}: step {step_text!r} must be a whole number > 0"
            )
        if body == "*":
            parts.append(part)
            continue
        first, dash, last = body.partition("-")
        start = _number(name, first, field, low, high)
        end = _number(name, last, field, low, high) if dash else (high if slash else start)
        if start > end:
            raise ValueError(f"{name} field {field!r}: range {body!r} runs backwards")
        text = str(start) if start == end and not slash else f"{start}-{end}"
        parts.append(f"{text}/{step_text}" if slash else text)
    return ",".join(parts)


def _number(name: str, token: str, field: str, low: int, high: int) -> int:
    text = token.strip().lower()
    if name == "month" and text in _MONTHS:
        return _MONTHS.index(text) + 1
    if not text.isdigit():
        raise ValueError(f"{name} field {field!r}: {token!r} is not a number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} field {field!r}: {value} is outside {low}-{high}")
    return value


def _weekdays(field: str) -> str:
    """Cron's weekday field (0 or 7 = Sunday, names, ranges, steps, lists) as APScheduler names."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        days |= _weekday_part(part, field)
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def _weekday_part(part: str, field: str) -> set[int]:
    body, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ValueError(
                f"weekday field {field!r}: step {step_text!r} must be a whole number > 0"
            )
        step = int(step_text)
    if body == "*":
        low, high = 0, 6
    elif "-" in body:
        first, _, last = body.partition("-")
        low, high = _weekday_number(first, field), _weekday_number(last, field)
        if high == 0 and low > 0:
            high = 7  # "fri-sun": Sunday as the end of a range is day 7
        if low > high:
            raise ValueError(f"weekday field {field!r}: range {body!r} runs backwards")
    else:
        low = _weekday_number(body, field)
        high = 6 if slash else low  # cron reads "1/2" as "1-6/2"
    return {day % 7 for day in range(low, high + 1, step)}


def _weekday_number(token: str, field: str) -> int:
    text = token.strip().lower()
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    raise ValueError(
        f"weekday field {field!r}: {token!r} is not a weekday; use 0-7 (0 and 7 are Sunday) "
        "or sun, mon, tue, wed, thu, fri, sat"
    )
