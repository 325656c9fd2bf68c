"""``kind = "page"``: a Daily Papers page read from a file, a glob of files, or a URL.

The format (API JSON, page HTML, a page saved as text) is sniffed from the content by
:mod:`digest.sources.sniff`, never taken from a file name or a Content-Type header. Each file of
a glob is a unit of its own: one unreadable file fails alone.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path
from typing import Literal

from digest.models import Paper
from digest.settings import LocatedSource
from digest.sources import ReadContext, Skip, Unit
from digest.sources.local import expand


class PageSource(LocatedSource):
    """``kind = "page"`` with ``path`` (file or glob; ``bundled:`` = the shipped samples) or
    ``url``."""

    kind: Literal["page"]

    def units(self, context: ReadContext) -> list[Unit]:
        """One unit per URL or per file the path or glob names."""
        if self.url is not None:
            return [Unit(self.url, partial(_read_url, context, self.url))]
        assert self.path is not None  # LocatedSource guarantees a path or a url
        paths = expand(context.resolve(self.path), self.label)
        return [Unit(str(path), partial(_read_file, context, path)) for path in paths]


def _read_url(context: ReadContext, url: str, skip: Skip) -> list[Paper]:
    return _parse(context, context.download(url), url, skip)


def _read_file(context: ReadContext, path: Path, skip: Skip) -> list[Paper]:
    data = context.read_file(path)
    return _parse(context, data, str(path), skip, saved=_saved_on(path))


def _saved_on(path: Path) -> dt.date | None:
    """The day ``path`` was last written, which for a page saved from a browser is its day."""
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).date()
    except (OSError, ValueError, OverflowError):
        return None


def _parse(
    context: ReadContext, data: bytes, origin: str, skip: Skip, *, saved: dt.date | None = None
) -> list[Paper]:
    # Imported here: the HTML parser pulls in BeautifulSoup, which `digest check` never needs.
    from digest.sources.sniff import parse_document

    return parse_document(
        data,
        origin=origin,
        today=context.today,
        saved=saved,
        limits=context.limits,
        on_skip=skip,
    )
