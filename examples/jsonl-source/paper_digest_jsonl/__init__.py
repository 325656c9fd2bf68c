"""``kind = "jsonl"``: Daily Papers API entries (or bare ``paper`` objects) as JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from digest.errors import ParseError
from digest.models import Paper
from digest.sources import ReadContext, Skip
from digest.sources.hf_api import papers_from_entries
from digest.sources.located import LocatedKind

HINT = 'one JSON object a line: a Daily Papers API entry, or its "paper" object'


class JsonlSource(LocatedKind):
    """``[[sources]] kind = "jsonl"`` with ``path`` (a file or glob) or ``url``."""

    kind: Literal["jsonl"]

    def parse(
        self, data: bytes, *, origin: str, context: ReadContext, skip: Skip, path: Path | None
    ) -> list[Paper]:
        entries: list[Any] = []
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                skip(ParseError(f"not JSON: {exc}", where=f"{origin}: line {number}", hint=HINT))
                continue
            is_entry = isinstance(entry, dict) and "paper" in entry
            entries.append(entry if is_entry else {"paper": entry})
        if not entries:
            raise ParseError("no entries", where=origin, hint=HINT)
        return papers_from_entries(entries, origin=origin, limits=context.limits, on_skip=skip)
