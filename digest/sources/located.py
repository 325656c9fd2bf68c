"""Sources read from a file, a glob of files or a URL: the units, once for every such kind.

A kind subclasses :class:`LocatedKind` and says only how to turn the bytes of one file or answer
into papers (``parse``); the ``path`` / ``url`` keys, glob expansion (one unit per file, a
folder skipped), regular-file reads within the size limit and downloads under the deadlines are
shared. That is all a plugin needs for a new format (``examples/jsonl-source`` is 30 lines).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from digest.models import Paper
from digest.settings import LocatedSource
from digest.sources import ReadContext, Skip, Unit
from digest.sources.local import expand


class LocatedKind(LocatedSource):
    """A ``[[sources]]`` kind with ``path`` (file or glob) or ``url``; subclasses parse."""

    def units(self, context: ReadContext) -> list[Unit]:
        """One unit for the URL, or one per file the path or glob names."""
        if self.url is not None:
            return [Unit(self.url, partial(self._read_url, context, self.url))]
        assert self.path is not None  # LocatedSource guarantees a path or a url
        paths = expand(context.resolve(self.path), self.label)
        return [Unit(str(path), partial(self._read_file, context, path)) for path in paths]

    def parse(
        self, data: bytes, *, origin: str, context: ReadContext, skip: Skip, path: Path | None
    ) -> list[Paper]:
        """The papers in ``data`` read from ``origin`` (``path`` when it is a file); a
        ParseError when it holds none, each malformed entry reported to ``skip``."""
        raise NotImplementedError(f"{type(self).__name__} must say how to parse its input")

    def _read_url(self, context: ReadContext, url: str, skip: Skip) -> list[Paper]:
        return self.parse(context.download(url), origin=url, context=context, skip=skip, path=None)

    def _read_file(self, context: ReadContext, path: Path, skip: Skip) -> list[Paper]:
        data = context.read_file(path)
        return self.parse(data, origin=str(path), context=context, skip=skip, path=path)
