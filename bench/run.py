"""Benchmark: a full `digest run` to the file outbox, 10,000 subscribers x 60 papers.

Prints wall time, messages per second and the peak resident memory of the run (a subprocess,
exactly as cron would start it). Run by hand: ``.venv/bin/python bench/run.py [SUBSCRIBERS]``.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from digest.sources.text_page import parse_text_page

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "tests" / "fixtures" / "samples" / "text-pages"
VOCABULARY = [
    "attention", "attention head", "mixture of experts", "agent", "reasoning", "retrieval",
    "RAG", "LoRA", "quantiz*", "diffusion", "transformer", "benchmark", "vision", "robot*",
    "reinforcement learning", "LLM", "knowledge", "memory", "scaling", "distillation",
]  # fmt: skip


def papers(count: int) -> list[dict[str, object]]:
    """API entries built from the real abstracts of the sample pages."""
    import datetime as dt

    texts = []
    for page in sorted(PAGES.glob("*.txt")):
        texts += parse_text_page(page.read_text(), origin=str(page), today=dt.date(2026, 11, 23))
    entries = []
    for n, paper in enumerate(texts[:count]):
        entries.append(
            {
                "paper": {
                    "id": f"2611.{n:05d}",
                    "title": paper.title,
                    "summary": paper.abstract,
                    "authors": [{"name": f"Author {n} {i}", "hidden": False} for i in range(5)],
                    "upvotes": n % 40,
                },
                "title": paper.title,
            }
        )
    return entries


def config(folder: Path, subscribers: int) -> Path:
    rng = random.Random(7)
    lines = [
        '[digest]\nstore = "digest.db"\n',
        '[[sources]]\nkind = "page"\npath = "papers.json"\n',
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n',
    ]
    for n in range(subscribers):
        keywords = json.dumps(rng.sample(VOCABULARY, rng.randint(1, 4)))
        lines.append(
            f'[[subscribers]]\nemail = "reader{n}@example.org"\nname = "Reader {n}"\n'
            f"keywords = {keywords}\nmax_papers = 15\n"
        )
    path = folder / "digest.toml"
    path.write_text("".join(lines))
    return path


def main() -> None:
    subscribers = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "papers.json").write_text(json.dumps(papers(60)))
        path = config(folder, subscribers)
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(path), "run"],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        sent = len(list((folder / "outbox").glob("*.eml")))
        if result.returncode != 0:
            print(result.stdout[-2000:], result.stderr[-2000:])
        print(f"digest run: {subscribers} subscribers x 60 papers -> {sent} messages")
        print(f"  wall time {elapsed:.1f} s, {sent / elapsed:.0f} messages/s")
        print(f"  peak memory {peak_kib / 1024:.0f} MiB (max RSS of the run)")


if __name__ == "__main__":
    main()
