"""Readers' own changes to their subscription, made on their preferences page: the keys they may
change, the form read and checked, the subscribers a run uses (the TOML entry with the reader's
changes over it), and the effective list written back as TOML (``digest subscribers export``).

The TOML file stays the list of who is subscribed: a change only ever applies to an entry it
lists, and an address it no longer lists has no digest whatever was saved. Saved changes are kept
as the values that differ from the entry, so an operator's later edit of another key still
counts. With ``[server] self_service = false`` nothing is saved and saved changes are not applied.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from digest.match.embedding import topic_words
from digest.models import WEEKDAYS, Subscriber

# what a reader may change, and how the page's form writes it
LISTS = ("about", "keywords", "exclude")
EDITABLE = (*LISTS, "max_papers", "frequency", "weekday", "day", "paused_until")
MAX_LINES = 50  # terms or descriptions a reader may write in one box
PAUSES = (0, 1, 2, 4, 8)  # weeks

_ADAPTER: TypeAdapter[Subscriber] = TypeAdapter(Subscriber)


def apply(subscriber: Subscriber, settings: Mapping[str, Any]) -> Subscriber:
    """``subscriber`` with a reader's saved ``settings`` over it (keys not editable ignored; a
    saved value the current version cannot take leaves the entry's own)."""
    changes = {key: settings[key] for key in EDITABLE if key in settings}
    if not changes:
        return subscriber
    try:
        for key in LISTS:
            if isinstance(changes.get(key), list):
                changes[key] = tuple(changes[key])
        if isinstance(changes.get("paused_until"), str):
            changes["paused_until"] = dt.date.fromisoformat(changes["paused_until"])
        return _validated(dataclasses.replace(subscriber, **changes))
    except (ValidationError, TypeError, ValueError):
        return subscriber


def _validated(subscriber: Subscriber) -> Subscriber:
    fields = {f.name: getattr(subscriber, f.name) for f in dataclasses.fields(subscriber)}
    return _ADAPTER.validate_python(fields)


def effective(
    subscribers: Sequence[Subscriber], saved: Mapping[str, Mapping[str, Any]]
) -> list[Subscriber]:
    """The subscribers as a run uses them: each with its reader's saved changes (by address)."""
    if not saved:
        return list(subscribers)
    return [apply(s, saved[s.address]) if s.address in saved else s for s in subscribers]


def changed_keys(settings: Mapping[str, Any]) -> list[str]:
    """The keys a reader changed, in the page's order."""
    return [key for key in EDITABLE if key in settings]


def read_form(
    subscriber: Subscriber, form: Mapping[str, str], *, today: dt.date
) -> tuple[dict[str, Any], list[str]]:
    """The settings a submitted preferences form asks for, as differences from the reader's TOML
    entry ``subscriber``, and what is wrong with them (each a sentence naming the field)."""
    problems: list[str] = []
    wanted: dict[str, Any] = {}
    for key in LISTS:
        lines = [" ".join(line.split()) for line in form.get(key, "").splitlines()]
        lines = [line for line in lines if line]
        if len(lines) > MAX_LINES:
            problems.append(f"{key}: at most {MAX_LINES} lines")
        wanted[key] = tuple(dict.fromkeys(lines[:MAX_LINES]))
    if wanted["about"] and not semantic_installed():
        problems.append("about: interests in plain words are not installed on this server")
    problems += [
        f"about: “{line}” names no topic; write what the papers are about"
        for line in wanted["about"]
        if not topic_words(line)
    ]
    wanted["max_papers"] = _number(form, "max_papers", subscriber.max_papers, problems)
    frequency = form.get("frequency", subscriber.frequency)
    if frequency not in ("daily", "weekly", "monthly"):
        problems.append("frequency: choose daily, weekly or monthly")
        frequency = subscriber.frequency
    wanted["frequency"] = frequency
    weekday = form.get("weekday") or None
    if weekday is not None and weekday not in WEEKDAYS:
        problems.append("weekday: choose a day of the week")
    wanted["weekday"] = weekday if frequency == "weekly" and weekday in WEEKDAYS else None
    day = _number(form, "day", subscriber.day or 1, problems) if form.get("day") else None
    wanted["day"] = day if frequency == "monthly" else None
    pause = form.get("pause", "keep")
    if pause == "keep":
        wanted["paused_until"] = subscriber.paused_until
    elif pause.isdigit() and int(pause) in PAUSES:
        weeks = int(pause)
        wanted["paused_until"] = today + dt.timedelta(weeks=weeks) if weeks else None
    else:
        problems.append("pause: choose how many weeks")
    try:
        candidate = _validated(dataclasses.replace(subscriber, **wanted))
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']}")
        return {}, problems
    if not problems:
        problems += _term_problems(candidate)
    return _differences(subscriber, candidate), problems


def _number(form: Mapping[str, str], key: str, default: int, problems: list[str]) -> int:
    text = form.get(key, "").strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 4:
        problems.append(f"{key}: write a whole number")
        return default
    return int(text)


def _term_problems(candidate: Subscriber) -> list[str]:
    """What the config's own checks say of the reader's terms (one that cannot match, one both
    wanted and excluded), without the config's file and line."""
    from digest.config_sections import subscriber_problems

    _, problems = subscriber_problems([candidate])
    return [message for _, message in problems]


def _differences(subscriber: Subscriber, candidate: Subscriber) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in EDITABLE:
        value = getattr(candidate, key)
        if value != getattr(subscriber, key):
            found[key] = _plain(value)
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def semantic_installed() -> bool:
    """Whether interests in plain words (``about``) can be used here (the semantic extra)."""
    from digest.match import embedding

    return embedding.installed()


# --- the effective list, as TOML ---------------------------------------------------------------

_DEFAULTS = Subscriber(email="")


def export_toml(subscribers: Sequence[Subscriber]) -> str:
    """``[[subscribers]]`` entries for ``subscribers``: every key that is not its default."""
    out: list[str] = []
    for subscriber in subscribers:
        out.append("[[subscribers]]")
        for field in dataclasses.fields(subscriber):
            value = getattr(subscriber, field.name)
            if field.name != "email" and value == getattr(_DEFAULTS, field.name):
                continue
            out.append(f"{field.name} = {_toml(value)}")
        out.append("")
    return "\n".join(out)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    # a JSON string is a TOML basic string: the same escapes, \\uXXXX included
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
