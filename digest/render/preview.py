"""Writing rendered emails to a folder for a browser: one .html and .txt each, and an index."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from digest.errors import RenderError
from digest.models import Rendered, Subscriber
from digest.render.environment import (
    INDEX_TEMPLATE,
    load_template,
    make_environment,
    render_template,
)

_SLUG = re.compile(r"[^a-z0-9]+")

# The names the last preview wrote, so the next one removes what it no longer writes (a
# subscriber since removed) and never touches a file a preview did not create.
MANIFEST = ".digest-preview"


def preview_slug(email: str) -> str:
    """A file name stem for ``email``: lower-case letters and digits joined by dashes."""
    return _SLUG.sub("-", email.casefold()).strip("-") or "subscriber"


def _write_atomic(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_preview(
    out_dir: Path,
    items: Sequence[tuple[Subscriber, Rendered]],
    unsent: Mapping[str, str] | None = None,
    empty: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write each email as ``<slug>.html`` and ``<slug>.txt`` plus an ``index.html`` linking them;
    ``unsent`` maps the address of an email ``digest run`` would not send to the reason, and
    ``empty`` that of an email without papers to why it is empty; the index shows both. Files
    of an earlier preview not written again are removed.

    Returns the paths written, index first. Every file is written atomically (temp + rename).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(
            f"cannot create the preview folder: {exc.strerror or exc}",
            where=str(out_dir),
            hint="choose another --out folder",
        ) from exc
    unsent = unsent or {}
    empty = empty or {}
    env = make_environment()
    index = load_template(env, INDEX_TEMPLATE)
    written: list[Path] = []
    entries: list[dict[str, str]] = []
    used: set[str] = set()
    try:
        earlier = _earlier_files(out_dir)
        for subscriber, rendered in items:
            stem = preview_slug(subscriber.email)
            unique, n = stem, 2
            while unique in used or unique == "index":
                unique, n = f"{stem}-{n}", n + 1
            used.add(unique)
            html_path, text_path = out_dir / f"{unique}.html", out_dir / f"{unique}.txt"
            _write_atomic(html_path, rendered.html)
            _write_atomic(text_path, rendered.text)
            written += [html_path, text_path]
            entries.append(
                {
                    "email": subscriber.email,
                    "subject": rendered.subject,
                    "html": html_path.name,
                    "text": text_path.name,
                    "unsent": unsent.get(subscriber.email, ""),
                    "empty": empty.get(subscriber.email, ""),
                }
            )
        index_path = out_dir / "index.html"
        _write_atomic(index_path, render_template(index, {"items": entries}))
        names = {path.name for path in written} | {index_path.name}
        _write_atomic(out_dir / MANIFEST, "".join(f"{name}\n" for name in sorted(names)))
        for name in earlier - names:
            (out_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        raise RenderError(
            f"cannot write the preview: {exc.strerror or exc}",
            where=str(exc.filename or out_dir),
            hint="check the folder's permissions and free space",
        ) from exc
    return [index_path, *written]


def _earlier_files(out_dir: Path) -> set[str]:
    """The plain file names the manifest of an earlier preview lists (nothing outside the
    folder, whatever the manifest says)."""
    try:
        listed = (out_dir / MANIFEST).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return set()
    return {name for name in listed if name and name == Path(name).name and name != MANIFEST}
