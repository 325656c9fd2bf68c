"""Sources: turning Daily Papers inputs (API JSON, page HTML, saved text pages) into papers.

:func:`read_sources` is the one entry point: it expands the configured sources into units of work
(one API request per day, one file per glob match, one page URL), runs them with at most
``fetch.concurrency`` at once, turns each failing unit into a ``SourceFailure`` while the others
still go through, and de-duplicates what was read.
"""

from __future__ import annotations

import datetime as dt
import glob
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from digest.config import FetchSection, SourceSection
from digest.errors import DigestError, SourceError
from digest.identity import merge_papers
from digest.models import Batch, Paper, SourceFailure
from digest.sources.fetch import get
from digest.sources.hf_api import parse_api
from digest.sources.sniff import parse_document

__all__ = ["read_sources", "source_for"]


@dataclass(frozen=True)
class _Unit:
    """One file or URL to read; ``read`` raises a DigestError on failure."""

    label: str
    read: Callable[[], list[Paper]]


def read_sources(
    sources: Sequence[SourceSection],
    *,
    client: httpx.Client,
    fetch: FetchSection,
    base_dir: Path,
    today: dt.date,
    sleep: Callable[[float], None] = time.sleep,
) -> Batch:
    """Read every source; ``today`` picks the API dates and resolves yearless text-page dates."""
    units: list[_Unit] = []
    failures: list[SourceFailure] = []

    def download(url: str) -> bytes:
        return get(client, url, retries=fetch.retries, backoff=fetch.backoff, sleep=sleep)

    for source in sources:
        if source.kind == "hf-api":
            units.extend(_api_units(source, today, download))
        elif source.url is not None:
            units.append(_Unit(source.url, partial(_read_url, source.url, download, today)))
        else:
            try:
                units.extend(_file_units(source, base_dir, today))
            except SourceError as exc:
                failures.append(_failure(source.label, exc))

    entries: list[Paper] = []
    with ThreadPoolExecutor(max_workers=fetch.concurrency) as pool:
        for unit, outcome in zip(units, pool.map(_run, units), strict=True):
            if isinstance(outcome, DigestError):
                failures.append(_failure(unit.label, outcome))
            else:
                entries.extend(outcome)
    return Batch(
        papers=tuple(merge_papers(entries)), failures=tuple(failures), entries=len(entries)
    )


def source_for(location: str) -> SourceSection:
    """The ``page`` source for a ``--source`` argument: a URL when http(s), else a path or glob."""
    if location.startswith(("http://", "https://")):
        return SourceSection.model_validate({"kind": "page", "url": location})
    return SourceSection.model_validate({"kind": "page", "path": location})


def _api_units(
    source: SourceSection, today: dt.date, download: Callable[[str], bytes]
) -> list[_Unit]:
    units: list[_Unit] = []
    for back in range(source.days):
        day = today - dt.timedelta(days=back)
        url = str(httpx.URL(source.api_url).copy_merge_params({"date": day.isoformat()}))

        def read(url: str = url, day: dt.date = day) -> list[Paper]:
            return parse_api(download(url).decode("utf-8", "replace"), origin=url, page_date=day)

        units.append(_Unit(url, read))
    return units


def _file_units(source: SourceSection, base_dir: Path, today: dt.date) -> list[_Unit]:
    assert source.path is not None  # SourceSection guarantees a path or a url
    pattern = str(base_dir / Path(source.path).expanduser())
    if glob.has_magic(pattern):
        paths = sorted(glob.glob(pattern, recursive=True))
        if not paths:
            raise SourceError(
                "the pattern matches no file",
                where=source.label,
                hint=f"looked for {pattern}; check the path in [[sources]] "
                "(relative paths start at the config's folder)",
            )
    else:
        paths = [pattern]
    return [_Unit(path, partial(_read_file, Path(path), today)) for path in paths]


def _read_url(url: str, download: Callable[[str], bytes], today: dt.date) -> list[Paper]:
    return parse_document(download(url), origin=url, today=today)


def _read_file(path: Path, today: dt.date) -> list[Paper]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError(
            "no such file",
            where=str(path),
            hint="check the path in [[sources]] (relative paths start at the config's folder)",
        ) from exc
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", where=str(path)) from exc
    return parse_document(data, origin=str(path), today=today)


def _run(unit: _Unit) -> list[Paper] | DigestError:
    try:
        return unit.read()
    except DigestError as exc:
        return exc


def _failure(label: str, error: DigestError) -> SourceFailure:
    # A parse error may point inside the file ("FILE: entry [3]"): keep that part in the message.
    detail = (error.where or "").removeprefix(label).lstrip(": ")
    message = f"{detail}: {error.message}" if detail else error.message
    return SourceFailure(source=label, message=message, hint=error.hint)
