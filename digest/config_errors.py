"""Config validation errors as one line each: ``FILE:LINE: key.path: message``, with the fix.

pydantic reports a location (``subscribers[0].keywords``) and a message; this module finds the
line of that key in the TOML text, names the key the way the file spells it, suggests the nearest
known key for a misspelt one, and turns the messages of discriminated unions (``kind``,
``method``) into words a user can act on.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from digest.errors import ConfigError

HINT = "`digest init --print` shows every key with its default and what it does"
_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")
_TAGS = re.compile(r"'([^']*)'")


def toml_error(exc: Exception, path: Path) -> ConfigError:
    """A TOML syntax error, naming the file and the line the parser stopped at."""
    return ConfigError(
        f"not valid TOML: {exc}",
        where=str(path),
        hint="check quotes, brackets and that every value has a key = value form",
    )


def describe_errors(
    exc: ValidationError | None,
    text: str,
    path: Path,
    schema: type[BaseModel],
    gathered: Sequence[tuple[tuple[str | int, ...], str]] = (),
) -> ConfigError:
    """Every problem of ``exc`` and every ``gathered`` (location, message) as one line each; the
    hint says where every key is documented."""
    errors: list[Any] = list(exc.errors()) if exc is not None else []
    errors += [{"loc": loc, "msg": message, "type": "value_error"} for loc, message in gathered]
    lines = [_describe(error, text, path, schema) for error in errors]
    return ConfigError("\n".join(dict.fromkeys(lines)), where=None, hint=HINT)


def _describe(error: Any, text: str, path: Path, schema: type[BaseModel]) -> str:
    raw_loc: tuple[str | int, ...] = tuple(error["loc"])
    loc = _without_tags(raw_loc, schema)
    dotted = _dotted(loc)
    line = _line_of(text, loc) or _line_of(text, loc[:-1])
    where = f"{path}:{line}" if line else str(path)
    kind = error["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's, a dataclass's
        known = _known_keys(raw_loc[:-1], schema)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {guess[0]!r}?" if guess else f"known keys: {', '.join(known)}"
        return f"{where}: {dotted}: unknown key; {fix}"
    if kind == "missing":
        return f"{where}: {dotted}: required key is missing; add {loc[-1]} = ..."
    if kind == "union_tag_not_found":
        return f"{where}: {dotted}.kind: required key is missing; add kind = ..."
    if kind in ("union_tag_invalid", "literal_error"):
        suffix = ".kind" if kind == "union_tag_invalid" else ""
        return f"{where}: {dotted}{suffix}: {_unknown_choice(error)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {error.get('input')!r})"
    return f"{where}: {dotted}: {message}"


def _unknown_choice(error: Any) -> str:
    given = error.get("input")
    if isinstance(given, dict):
        given = given.get("kind")
    context = error.get("ctx") or {}
    expected = context.get("expected_tags") or context.get("expected") or ""
    choices = _TAGS.findall(str(expected))
    guess = difflib.get_close_matches(str(given), choices, n=1)
    fix = f"did you mean {guess[0]!r}? " if guess else ""
    known = ", ".join(repr(choice) for choice in choices)
    return f"unknown value {given!r}; {fix}known: {known}"


def _without_tags(loc: Sequence[str | int], schema: type[BaseModel]) -> tuple[str | int, ...]:
    """``loc`` without the discriminator tags pydantic puts after a union member's index."""
    out: list[str | int] = []
    members: list[type[BaseModel]] = [schema]
    after_index = False
    for part in loc:
        if after_index and len(members) > 1 and isinstance(part, str):
            # pydantic names the union member it tried: ("sources", 0, "hf-api", "url")
            members = [m for m in members if _tag_of(m) == part] or members[:1]
            after_index = False
            continue
        after_index = isinstance(part, int)
        out.append(part)
        if isinstance(part, str):
            field = members[0].model_fields.get(part) if members else None
            members = _models_of(field.annotation) if field is not None else []
    return tuple(out)


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _known_keys(loc: Sequence[str | int], schema: type[BaseModel]) -> list[str]:
    model: type[BaseModel] = schema
    candidates: list[type[BaseModel]] = []
    for part in loc:
        if isinstance(part, int):
            continue
        member = next((m for m in candidates if _tag_of(m) == part), None)
        if member is not None:
            model, candidates = member, []
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            break
        item = _dataclass_of(field.annotation)
        if item is not None:  # [[subscribers]] entries are validated into a dataclass
            return sorted(f.name for f in dataclasses.fields(item))
        members = _models_of(field.annotation)
        if not members:
            break
        model, candidates = members[0], members if len(members) > 1 else []
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _dataclass_of(annotation: Any) -> type | None:
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _dataclass_of(arg)
        if found is not None:
            return found
    return None


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    args = getattr(field.annotation, "__args__", ()) if field is not None else ()
    return str(args[0]) if args else None


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):  # unions, tuple[...], Annotated[...]
        found += [m for m in _models_of(arg) if m not in found]
    return found


def _line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the key or table that ``loc`` points at, or None when not found: the
    line itself, else the first line of a key that holds it (``keywords`` for ``keywords[2]``).
    """
    tables, keys = _line_index(text)
    target = tuple(loc)
    exact = [line for line in (tables.get(target), keys.get(target)) if line is not None]
    if exact:
        return min(exact)
    holders = [keys[target[:n]] for n in range(1, len(target)) if target[:n] in keys]
    return min(holders) if holders else None


@functools.lru_cache(maxsize=4)
def _line_index(
    text: str,
) -> tuple[dict[tuple[str | int, ...], int], dict[tuple[str | int, ...], int]]:
    """Where each table and each key of ``text`` is first written, by its location: one scan
    for all the errors of a file (a scan per error made 1,000 errors of a file of 100,000
    subscribers take minutes).

    A line-oriented scan of the (already valid) TOML, tracking the current table and the index
    of each array-of-tables entry; good enough for a key written on its own line.
    """
    counts: dict[str, int] = {}
    table: list[str | int] = []
    tables: dict[tuple[str | int, ...], int] = {}
    keys: dict[tuple[str | int, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            names = [n.strip() for n in header.group(2).split(".")]
            if header.group(1) == "[[":
                joined = ".".join(names)
                counts[joined] = counts.get(joined, -1) + 1
                table = [*names[:-1], names[-1], counts[joined]]
            else:
                table = []
                for i, name in enumerate(names):
                    table.append(name)
                    prefix = ".".join(names[: i + 1])
                    if prefix in counts and i < len(names) - 1:
                        table.append(counts[prefix])
            tables.setdefault(tuple(table), number)
            continue
        key = _KEY.match(line)
        if key:
            keys.setdefault((*table, key.group(1).strip('"')), number)
    return tables, keys
