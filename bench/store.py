"""Benchmark: a year of daily runs on one store; its size, and what planning costs on day 365.

    .venv/bin/python bench/store.py [--days 365] [--subscribers 10000] [--papers 60]

Each simulated day goes through the store the way a run does: the source returns the papers of
the lookback window (3 days of 60, the last day's new), as ``hf-api`` does with its default
``days``, so the first run already reads a full window; then the real plan
(observed, the store read, every subscriber matched), a digest recorded for every subscriber with
a match, all marked sent in groups of 100, then the store pruned as a run prunes it (rendering
and sending are left out: they do not touch the store). On day 1 and on the last day a real planning
step (``digest.plan.make_plan``: sources read, store read, every subscriber matched) runs in a
fresh process against the store, and its time and peak RSS are printed side by side, with the
same on day 6 (the first day whose deliveries read, 4 days, are full, as every later day's are).
Targets: store <= 300 MiB after day 365; the last day's planning time and peak RSS within 1.5x
of day 1's (the day-6 figure shows what is window, not history). Each probed day is probed
``--probes`` times (default 5) and the median is compared, with the range printed: one probe of a
second on a shared machine swings by half.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import VOCABULARY, api_entries

from digest.config import load_config
from digest.models import Batch, Paper, Subscriber
from digest.plan import make_plan, retention
from digest.store import Accepted, PlannedDigest
from digest.store.sqlite import SqliteStore

START = dt.datetime(2026, 1, 1, 7, 0, tzinfo=dt.UTC)
LOOKBACK = 3
# Day 1 plans with nothing delivered; from here on the deliveries read with the window (4 days)
# are full, as they are on every later day.
STEADY_DAY = 5
PROBE = """
import datetime as dt, json, sys, time
from pathlib import Path
from digest import pipeline
from digest.config import load_config
from digest.plan import make_plan
from digest.store.sqlite import SqliteStore
config = load_config(Path(sys.argv[1]))
now = dt.datetime.fromisoformat(sys.argv[2])
started = time.perf_counter()
with SqliteStore.open(config.store_path, readonly=True) as store:
    batch = pipeline.collect(config, client=None, day=now.date())
    plan = make_plan(config.subscriber_list, batch, store=store, now=now, lookback_days=3,
                     record=False)
print(time.perf_counter() - started, sum(plan.matched.values()))
"""


def day_papers(day: int, count: int, base: list[dict[str, object]]) -> list[Paper]:
    return [
        Paper(
            arxiv_id=f"26{day // 30 + 1:02d}.{day:03d}{n:02d}",
            title=f"{entry['paper']['title']} (day {day})",  # type: ignore[index]
            abstract=str(entry["paper"]["summary"]),  # type: ignore[index]
            upvotes=n % 40,
        )
        for n, entry in enumerate(base[:count])
    ]


def window_papers(day: int, count: int, base: list[dict[str, object]]) -> list[Paper]:
    """What the source returns on ``day``: the papers of the lookback window's days."""
    return [p for d in range(day, day + LOOKBACK) for p in day_papers(d, count, base)]


def write_config(folder: Path, subscribers: int) -> Path:
    rng = random.Random(7)
    lines = ['[digest]\nstore = "digest.db"\n', '[[sources]]\nkind = "page"\npath = "today.json"\n']
    for n in range(subscribers):
        keywords = json.dumps(rng.sample(VOCABULARY, rng.randint(1, 4)))
        lines.append(f'[[subscribers]]\nemail = "reader{n}@example.org"\nkeywords = {keywords}\n')
    path = folder / "digest.toml"
    path.write_text("".join(lines))
    return path


def probes(
    config: Path, papers: list[Paper], now: dt.datetime, count: int
) -> tuple[float, int, str]:
    """Median planning time (s) and peak RSS (KiB) over ``count`` probes, and their range."""
    taken = [probe(config, papers, now) for _ in range(count)]
    times = sorted(t for t, _ in taken)
    peaks = sorted(m for _, m in taken)
    spread = f"{times[0]:.2f}-{times[-1]:.2f} s over {count} probes"
    return statistics.median(times), int(statistics.median(peaks)), spread


def probe(config: Path, papers: list[Paper], now: dt.datetime) -> tuple[float, int]:
    """Planning time (s) and peak RSS (KiB) of a real plan in a fresh process."""
    entries = [{"paper": {"id": p.arxiv_id, "title": p.title, "summary": p.abstract,
                          "upvotes": p.upvotes}} for p in papers]  # fmt: skip
    (config.parent / "today.json").write_text(json.dumps(entries))
    process = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(config), now.isoformat()], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("the planning probe failed")
    return float(out.split()[0]), usage.ru_maxrss


def simulate_day(store: SqliteStore, subscribers: Sequence[Subscriber], papers: list[Paper],
                 now: dt.datetime) -> None:  # fmt: skip
    """One day as a run lives it: the real plan (observe, read, match), every digest recorded
    as planned and then sent in groups, the store pruned."""
    plan = make_plan(subscribers, Batch(papers=tuple(papers)), store=store, now=now,
                     lookback_days=LOOKBACK, record=True)  # fmt: skip
    run = store.begin_run(now)
    planned = [
        PlannedDigest(
            s.email,
            tuple(m.paper.key for m in plan.matches[s.email]),
            tuple(plan.passed_over[s.email]),
        )
        for s in subscribers
        if plan.matched[s.email]
    ]
    opened = store.plan_digests(run, now.date(), planned, now)
    for start in range(0, len(opened), 100):
        group = opened[start : start + 100]
        sent = [Accepted(d.row, d.email, f"<{d.digest_id}@x>", d.papers) for d in group]
        store.mark_sent(run, sent, now)
    store.finish_run(run, now, "simulated")
    store.prune(now, retention(LOOKBACK))


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=60)
    parser.add_argument("--probes", type=int, default=5)
    args = parser.parse_args()
    print(
        "left out: rendering and sending (they do not touch the store); each probed day is "
        f"the median of {args.probes} planning probes in fresh processes"
    )
    base = api_entries(args.papers)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, args.subscribers)
        subscribers = load_config(config).subscriber_list
        db = folder / "digest.db"
        first: tuple[float, int, str] | None = None
        steady: tuple[float, int, str] | None = None
        started = time.perf_counter()
        for day in range(args.days):
            now = START + dt.timedelta(days=day)
            papers = window_papers(day, args.papers, base)
            if day == 0:
                SqliteStore.open(db).close()
                first = probes(config, papers, now, args.probes)
            if day == STEADY_DAY:
                steady = probes(config, papers, now, args.probes)
            with SqliteStore.open(db) as store:
                simulate_day(store, subscribers, papers, now)
            if (day + 1) % 30 == 0:
                print(f"  day {day + 1}: store {size_of(db) / 2**20:.1f} MiB "
                      f"({time.perf_counter() - started:.0f} s so far)", flush=True)  # fmt: skip
        last_day = START + dt.timedelta(days=args.days)
        last = probes(config, window_papers(args.days, args.papers, base), last_day, args.probes)
        assert first is not None
        with SqliteStore.open(db, readonly=True) as store:
            stats = store.stats()
        print(f"after {args.days} days x {args.subscribers} subscribers x {args.papers} papers:")
        print(f"  store {size_of(db) / 2**20:.1f} MiB (target <= 300 MiB); {stats.papers} papers "
              f"known, {stats.digests} sent digests held")  # fmt: skip
        probed = [("1", first), (str(STEADY_DAY + 1), steady), (str(args.days + 1), last)]
        for label, taken in probed:
            if taken is None:
                continue  # a run shorter than the steady day
            seconds, peak, spread = taken
            print(f"  planning day {label}: median {seconds:.2f} s ({spread}), "
                  f"{peak / 1024:.0f} MiB peak RSS")  # fmt: skip
        print(
            f"  ratio: time {last[0] / first[0]:.2f}, memory {last[1] / first[1]:.2f} "
            "(target <= 1.5 each)"
        )


if __name__ == "__main__":
    main()
