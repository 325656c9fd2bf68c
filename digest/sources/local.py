"""Local files for sources: globs expanded, regular files only, read up to a size limit.

A FIFO, a device (``/dev/zero``) or a directory named as a source would hang the run or fill its
memory, so a file is opened without blocking, checked to be a regular file, and read only up to
the limit.
"""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path

from digest.errors import SourceError

PATH_HINT = "check the path in [[sources]] (relative paths start at the config's folder)"


def expand(pattern: Path, label: str) -> list[Path]:
    """The files a path or glob names; SourceError when a glob matches nothing."""
    text = str(pattern)
    if "\x00" in text:
        raise SourceError("the path contains a NUL character", where=label, hint=PATH_HINT)
    if not glob.has_magic(text):
        return [pattern]
    # a folder among the matches is not a page: skipped, so `pages/*` may hold subfolders
    paths = sorted(p for p in glob.glob(text, recursive=True) if not os.path.isdir(p))
    if not paths:
        raise SourceError(
            "the pattern matches no file", where=label, hint=f"looked for {text}; {PATH_HINT}"
        )
    return [Path(p) for p in paths]


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``; SourceError when it is missing, not a regular file, or too big."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise SourceError("no such file", where=str(path), hint=PATH_HINT) from exc
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read: {_reason(exc)}", where=str(path), hint=PATH_HINT) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise SourceError(f"is {kind}", where=str(path), hint="point the source at a saved page")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > max_bytes:
            raise _too_big(path, max_bytes)
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise SourceError(f"cannot read: {_reason(exc)}", where=str(path)) from exc
    if len(data) > max_bytes:
        raise _too_big(path, max_bytes)
    return data


def _too_big(path: Path, max_bytes: int) -> SourceError:
    return SourceError(
        f"larger than the {max_bytes:,}-byte limit",
        where=str(path),
        hint="raise [fetch] max_bytes if this file is really a page of papers",
    )


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
