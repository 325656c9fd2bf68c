"""Benchmark: a full `digest run` to the file outbox against its floor, and planning at scale.

    .venv/bin/python bench/run.py [--subscribers 10000] [--papers 60]
    .venv/bin/python bench/run.py --subscribers 100000 --plan-only

Full mode: writes a config of ``--subscribers`` readers (1-4 interests each, drawn from a common
vocabulary, 15 papers at most) and an API file of ``--papers`` real abstracts, then

- runs ``digest run`` as cron would (a fresh process; wall time and its own peak RSS);
- measures, in this process and this run, the floor: the Jinja rendering of the same emails
  (the same templates, no CSS inlining, no MIME, no ledger) plus writing as many files of the
  same sizes as the run wrote;

and prints both and their ratio. Target: run <= 2x floor, peak RSS <= 150 MiB.

``--plan-only``: loads the config and plans the run (read the sources, the store, match every
subscriber) in a fresh process, and prints the time and peak RSS of that. Target at 100,000
subscribers: <= 3 s and <= 400 MiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
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


def write_setup(folder: Path, subscribers: int, papers: int) -> Path:
    rng = random.Random(7)
    (folder / "papers.json").write_text(json.dumps(api_entries(papers)))
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
    from digest import pipeline
    from digest.config import load_config
    from digest.plan import make_plan
    from digest.render import Renderer
    from digest.stage_settings import render_settings
    from digest.store.sqlite import SqliteStore

    config = load_config(config_path)
    with SqliteStore.open(scratch / "floor.db") as store:
        batch = pipeline.collect(config, client=None, day=NOW.date())  # type: ignore[arg-type]
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_setup(folder, args.subscribers, args.papers)
        if args.plan_only:
            probe = (
                "import time, datetime as dt, resource\n"
                "t = time.perf_counter()\n"
                "from pathlib import Path\n"
                "from digest import pipeline\n"
                "from digest.config import load_config\n"
                "from digest.store.sqlite import SqliteStore\n"
                f"config = load_config(Path({str(config)!r}))\n"
                "loaded = time.perf_counter() - t\n"
                f"now = dt.datetime.fromisoformat({NOW.isoformat()!r})\n"
                "with SqliteStore.open(config.store_path) as store:\n"
                "    _, plan = pipeline.plan_run(config, client=None, store=store, now=now,\n"
                "                                day=now.date(), record=True)\n"
                "total = time.perf_counter() - t\n"
                "print(loaded, total, sum(plan.matched.values()))\n"
            )
            _, peak, out = measured([sys.executable, "-c", probe], folder)
            loaded, total, matched = out.split()
            print(f"config load + plan, {args.subscribers} subscribers x {args.papers} papers:")
            print(f"  config load {float(loaded):.2f} s, load + plan {float(total):.2f} s "
                  f"(target <= 3 s), {int(matched)} matches")  # fmt: skip
            print(f"  peak RSS {peak / 1024:.0f} MiB (target <= 400 MiB)")
            return
        seconds, peak, out = measured(
            [sys.executable, "-m", "digest", "--config", str(config), "run"], folder
        )
        files = sorted((folder / "outbox").glob("*.eml"))
        sizes = [f.stat().st_size for f in files]
        render_s, write_s = floor(config, sizes, folder)
        floor_s = render_s + write_s
        print(f"digest run: {args.subscribers} subscribers x {args.papers} papers -> "
              f"{len(files)} messages, {sum(sizes) / 2**20:.0f} MiB")  # fmt: skip
        print(f"  run   {seconds:6.1f} s wall ({len(files) / seconds:.0f} messages/s), "
              f"peak RSS {peak / 1024:.0f} MiB (target <= 150 MiB)")  # fmt: skip
        print(f"  floor {floor_s:6.1f} s (Jinja rendering {render_s:.1f} s + writing the files "
              f"{write_s:.1f} s)")  # fmt: skip
        print(f"  run / floor = {seconds / floor_s:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
