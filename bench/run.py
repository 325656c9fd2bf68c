"""Benchmark: a full `digest run` to the file outbox against its floor, and planning at scale.

    .venv/bin/python bench/run.py [--subscribers 10000] [--papers 60]
    .venv/bin/python bench/run.py --day [FILE] [--subscribers 2000]
    .venv/bin/python bench/run.py --subscribers 100000 --plan-only

Full mode: writes a config of ``--subscribers`` readers (1-4 interests each, 15 papers at most)
and an API file, then

- runs ``digest run`` as cron would (a fresh process; wall time and its own peak RSS);
- measures, in this process and this run, the floor: the Jinja rendering of the same emails
  (the same templates, no CSS inlining, no MIME, no ledger) plus writing as many files of the
  same sizes as the run wrote;

and prints both and their ratio, then the top five of the run's profile (``--no-profile`` skips
that second run). Targets: run <= 1.5x floor (identical papers), <= 2x (``--day``); peak RSS
<= 150 MiB.

The papers: by default ``--papers`` real titles and abstracts of the sample text pages, read the
same way by everyone's interests drawn from 20 common terms, so every card looks alike (no AI
summary, links or organisation) and 10,000 readers share a few hundred interest sets. ``--day``
reads a real API day instead (default ``api_2025-10-06.json``: AI summaries, code links and
organisations) and draws each reader's interests from words and word pairs of that day's own
titles, so readers get different papers and cards of many shapes: what a real run pays.

Left out: the network (sources are a file, delivery the file outbox), SMTP, and the semantic
matcher (``bench/match.py --semantic`` measures that).

``--plan-only``: loads the config and plans the run (read the sources, the store, match every
subscriber) in a fresh process, and prints the time and peak RSS of that. Target at 100,000
subscribers: <= 3 s and <= 400 MiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "tests" / "fixtures" / "samples" / "text-pages"
DEFAULT_DAY = ROOT / "tests" / "fixtures" / "samples" / "hf" / "api_2025-10-06.json"
STOPWORDS = frozenset(
    ["a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "is", "of", "on", "or",
     "the", "to", "via", "with", "without", "towards", "toward", "through", "over", "under",
     "using", "based", "its", "their", "your", "our", "we", "you", "can", "do", "does", "not",
     "new"]
)  # fmt: skip
VOCABULARY = [
    "attention", "attention head", "mixture of experts", "agent", "reasoning", "retrieval",
    "RAG", "LoRA", "quantiz*", "diffusion", "transformer", "benchmark", "vision", "robot*",
    "reinforcement learning", "LLM", "knowledge", "memory", "scaling", "distillation",
]  # fmt: skip
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)


def api_entries(count: int) -> list[dict[str, object]]:
    """API entries built from the real titles and abstracts of the sample pages."""
    from digest.sources.text_page import parse_text_page

    texts = []
    for page in sorted(PAGES.glob("*.txt")):
        texts += parse_text_page(page.read_text(), origin=str(page), today=NOW.date())
    return [
        {
            "paper": {
                "id": f"2611.{n:05d}",
                "title": paper.title,
                "summary": paper.abstract,
                "authors": [{"name": f"Author {n} {i}", "hidden": False} for i in range(5)],
                "upvotes": n % 40,
            }
        }
        for n, paper in enumerate(texts[:count])
    ]


def title_terms(entries: list[dict[str, object]]) -> list[str]:
    """Words and word pairs of the day's titles, as a reader would type them."""
    terms: set[str] = set()
    for entry in entries:
        paper = entry["paper"]
        assert isinstance(paper, dict)
        words = [w.strip(":,.;()?!\"'").lower() for w in str(paper["title"]).split()]
        words = [w for w in words if len(w) > 2 and w not in STOPWORDS and w.isascii()]
        terms.update(w for w in words if w.isalpha())
        terms.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    return sorted(terms)


def write_setup(folder: Path, subscribers: int, papers: int, day: Path | None = None) -> Path:
    rng = random.Random(7)
    if day is None:
        vocabulary = VOCABULARY
        (folder / "papers.json").write_text(json.dumps(api_entries(papers)))
    else:
        entries = json.loads(day.read_text(encoding="utf-8"))
        vocabulary = title_terms(entries)
        (folder / "papers.json").write_text(json.dumps(entries))
    lines = [
        '[digest]\nstore = "digest.db"\n',
        '[[sources]]\nkind = "page"\npath = "papers.json"\n',
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n',
    ]
    for n in range(subscribers):
        keywords = json.dumps(rng.sample(vocabulary, rng.randint(1, 4)))
        lines.append(
            f'[[subscribers]]\nemail = "reader{n}@example.org"\nname = "Reader {n}"\n'
            f"keywords = {keywords}\nmax_papers = 15\n"
        )
    path = folder / "digest.toml"
    path.write_text("".join(lines))
    return path


def measured(command: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of ``command`` in a fresh process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=err)
        assert process.stdout is not None
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not the max of all
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"{command} failed:\n{out.decode()[-2000:]}\n{err.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss, out.decode()


def floor(config_path: Path, sizes: list[int], scratch: Path) -> tuple[float, float]:
    """Seconds for the Jinja rendering of the same emails, and for writing same-size files."""
    from digest import Digest
    from digest.config import load_config
    from digest.plan import make_plan
    from digest.render import Renderer
    from digest.stage_settings import render_settings

    config = load_config(config_path)
    # the library core reads the sources and opens a store of its own (not the run's)
    core = Digest(config, env={"DIGEST_STORE_URL": str(scratch / "floor.db")}, clock=lambda: NOW)
    batch = core.fetch(day=NOW.date())
    with core.open_store() as store:
        plan = make_plan(
            config.subscriber_list, batch, store=store, now=NOW, lookback_days=3, record=True
        )
    renderer = Renderer(render_settings(config), inline=False)
    started = time.perf_counter()
    for subscriber in config.subscriber_list:
        renderer.render(
            subscriber,
            plan.matches[subscriber.email],
            day=NOW.date(),
            new_count=len(plan.new),
            matched_count=plan.matched[subscriber.email],
        )
    render_seconds = time.perf_counter() - started
    out = scratch / "floor-outbox"
    out.mkdir()
    payload = os.urandom(max(sizes, default=0))
    started = time.perf_counter()
    for n, size in enumerate(sizes):
        with open(out / f"{n}.eml", "wb") as handle:
            handle.write(payload[:size])
    return render_seconds, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=60)
    parser.add_argument("--plan-only", action="store_true")
    parser.add_argument("--day", type=Path, nargs="?", const=DEFAULT_DAY, default=None,
                        help=f"a real API day (default {DEFAULT_DAY.name})")  # fmt: skip
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    args = parser.parse_args()
    print(
        "left out: the network (sources are a file, delivery the file outbox), SMTP, and the "
        "semantic matcher (bench/match.py --semantic)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_setup(folder, args.subscribers, args.papers, args.day)
        if args.plan_only:
            probe = (
                "import time, datetime as dt, resource\n"
                "t, c = time.perf_counter(), time.process_time()\n"
                "from pathlib import Path\n"
                "from digest import Digest, pipeline\n"
                "from digest.config import load_config\n"
                f"config = load_config(Path({str(config)!r}))\n"
                "loaded = time.perf_counter() - t\n"
                f"now = dt.datetime.fromisoformat({NOW.isoformat()!r})\n"
                "with Digest(config, clock=lambda: now).open_store() as store:\n"
                "    _, plan = pipeline.plan_run(config, client=None, store=store, now=now,\n"
                "                                day=now.date(), record=True)\n"
                "total = time.perf_counter() - t\n"
                "print(loaded, total, time.process_time() - c, sum(plan.matched.values()))\n"
            )
            _, peak, out = measured([sys.executable, "-c", probe], folder)
            loaded, total, cpu, matched = out.split()
            print(f"config load + plan, {args.subscribers} subscribers x {args.papers} papers:")
            print(f"  config load {float(loaded):.2f} s, load + plan {float(total):.2f} s wall, "
                  f"{float(cpu):.2f} s CPU (target <= 3 s), {int(matched)} matches")  # fmt: skip
            print(f"  peak RSS {peak / 1024:.0f} MiB (target <= 400 MiB)")
            return
        seconds, peak, out = measured(
            [sys.executable, "-m", "digest", "--config", str(config), "run"], folder
        )
        files = sorted((folder / "outbox").glob("*.eml"))
        sizes = [f.stat().st_size for f in files]
        render_s, write_s = floor(config, sizes, folder)
        floor_s = render_s + write_s
        papers = f"{args.day.name}" if args.day else f"{args.papers} papers"
        print(f"digest run: {args.subscribers} subscribers x {papers} -> "
              f"{len(files)} messages, {sum(sizes) / 2**20:.0f} MiB")  # fmt: skip
        print(f"  run   {seconds:6.1f} s wall ({len(files) / seconds:.0f} messages/s), "
              f"peak RSS {peak / 1024:.0f} MiB (target <= 150 MiB)")  # fmt: skip
        print(f"  floor {floor_s:6.1f} s (Jinja rendering {render_s:.1f} s + writing the files "
              f"{write_s:.1f} s)")  # fmt: skip
        target = 2 if args.day else 1.5
        print(f"  run / floor = {seconds / floor_s:.2f} (target <= {target})")
        if not args.no_profile:
            print_profile(folder, args)


def print_profile(folder: Path, args: argparse.Namespace) -> None:
    """The same run again (a fresh store) under cProfile: its top five parts by own time."""
    import pstats

    again = folder / "profiled"
    again.mkdir()
    config = write_setup(again, args.subscribers, args.papers, args.day)
    command = [sys.executable, "-m", "cProfile", "-o", "run.prof", "-m", "digest", "--config",
               str(config), "run"]  # fmt: skip
    measured(command, again)
    stats = pstats.Stats(str(again / "run.prof"))
    parts: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        part = part_of(filename, function)
        parts[part] = parts.get(part, 0.0) + own
    total = sum(parts.values())
    top = sorted(parts.items(), key=lambda item: -item[1])[:5]
    print("  profile (own time): " + ", ".join(f"{name} {own / total:.0%}" for name, own in top))


def part_of(filename: str, function: str) -> str:
    """A profile entry's part: a package, a digest module, a template, or a builtin."""
    if filename == "~":  # a builtin: "<built-in method posix.open>", "<method 'join' of ...>"
        return function.strip("<>{}").removeprefix("built-in method ").removeprefix("method ")
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    if path.suffix == ".j2":
        return f"template {path.name}"
    if "digest" in path.parts:
        return ".".join(path.parts[path.parts.index("digest") :]).removesuffix(".py")
    return f"stdlib {path.stem}"


if __name__ == "__main__":
    main()
