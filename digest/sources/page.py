"""``kind = "page"``: a Daily Papers page read from a file, a glob of files, or a URL.

The format (API JSON, page HTML, a page saved as text) is sniffed from the content by
:mod:`digest.sources.sniff`, never taken from a file name or a Content-Type header. Each file of
a glob is a unit of its own: one unreadable file fails alone.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from digest.models import Paper
from digest.sources import ReadContext, Skip
from digest.sources.located import LocatedKind


class PageSource(LocatedKind):
    """``kind = "page"`` with ``path`` (file or glob; ``bundled:`` = the shipped samples) or
    ``url``."""

    kind: Literal["page"]

    def parse(
        self, data: bytes, *, origin: str, context: ReadContext, skip: Skip, path: Path | None
    ) -> list[Paper]:
        """Whichever format the content is in; a file's modification day dates its yearless
        dates."""
        # Imported here: the HTML parser pulls in BeautifulSoup, which `digest check` never needs.
        from digest.sources.sniff import parse_document

        return parse_document(
            data,
            origin=origin,
            today=context.today,
            saved=_saved_on(path) if path is not None else None,
            limits=context.limits,
            on_skip=skip,
        )


def _saved_on(path: Path) -> dt.date | None:
    """The day ``path`` was last written, which for a page saved from a browser is its day."""
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()
    except (OSError, ValueError, OverflowError):
        return None
