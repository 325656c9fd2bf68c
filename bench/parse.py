"""Benchmark: reading every sample (sniffing, parsing, de-duplication), median of several runs.

    .venv/bin/python bench/parse.py [--runs 15]

Reads the five saved text pages, the four API responses and the HTML page from tests/fixtures
(bytes already in memory, so disk speed does not count), once through ``parse_document`` each and
then ``merge_papers`` over all entries, and prints the median wall time of a whole pass, then
the median per file, including the HTML page read from its cards (``data-props`` removed).
HTML goes through BeautifulSoup's "html.parser", measured faster here than its lxml builder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from digest.identity import merge_papers
from digest.models import Paper
from digest.sources.sniff import parse_document

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "fixtures" / "samples"
TODAY = dt.date(2025, 12, 20)


def load() -> dict[str, bytes]:
    """Every good sample by name, plus the HTML page without its JSON (the card fallback)."""
    paths = [
        *sorted((SAMPLES / "text-pages").glob("*.txt")),
        *sorted((SAMPLES / "hf").glob("api_*.json")),
        *sorted((SAMPLES / "hf").glob("page_*.html")),
    ]
    files = {path.name: path.read_bytes() for path in paths}
    page = files["page_2024-08-01.html"]
    files["page_2024-08-01.html (cards)"] = re.sub(
        rb'(data-target="DailyPapers") data-props="[^"]*"', rb"\1", page
    )
    return files


def median_seconds(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_all(files: dict[str, bytes]) -> tuple[int, int]:
    entries: list[Paper] = []
    for name, data in files.items():
        entries.extend(parse_document(data, origin=name, today=TODAY))
    return len(entries), len(merge_papers(entries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    files = load()
    entries, papers = read_all(files)
    total = median_seconds(lambda: read_all(files), args.runs)
    size = sum(len(data) for data in files.values())
    print(
        f"all samples: {len(files)} files, {size / 1024:.0f} KiB, {entries} entries -> "
        f"{papers} papers: {total * 1000:.1f} ms (median of {args.runs})"
    )
    for name, data in files.items():
        seconds = median_seconds(partial(parse_document, data, origin=name, today=TODAY), args.runs)
        print(f"  {name:<34} {len(data) / 1024:6.0f} KiB {seconds * 1000:7.2f} ms")


if __name__ == "__main__":
    main()
