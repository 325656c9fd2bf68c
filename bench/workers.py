"""Benchmark: one run's sends shared by 1, 2 and 4 `digest run` workers on one PostgreSQL store.

    .venv/bin/python bench/workers.py [--subscribers 10000] [--papers 60]

Starts a throwaway PostgreSQL cluster (Debian's ``postgresql`` package, as the tests do), then
for each number of workers: a fresh database, the same config (``--subscribers`` readers, the
file outbox), the workers started together, timed until the last exits; each subscriber's file
is checked to be there once. The same run on the default SQLite store (one sender) is the
baseline, measured in the same session. Printed: wall time, messages per second, the CPU all
processes used, and what coordinating through PostgreSQL costs per message (one worker's CPU
over SQLite's). On a machine with two cores, more workers cannot make the CPU-bound rendering
faster; the figure to watch is that coordination stays small per message.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import write_setup

from tests.postgres_cluster import running_cluster


def run_workers(folder: Path, config: Path, workers: int, store: str | None) -> tuple[float, float]:
    """Wall seconds until every worker exited, and the CPU seconds they used in all."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    if store:
        env["DIGEST_STORE_URL"] = store
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), "-q", "run"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    cpu = 0.0
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            assert process.stderr is not None
            sys.exit(f"a worker failed: {process.stderr.read().decode()[-2000:]}")
        cpu += usage.ru_utime + usage.ru_stime
    return time.perf_counter() - started, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=60)
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers x {args.papers} papers, file outbox; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, running_cluster() as cluster:
        base = Path(tmp)
        results: dict[str, tuple[float, float]] = {}
        expected: int | None = None  # the messages the SQLite run wrote: everyone with a match
        for label, workers, store in [
            ("sqlite, 1 sender", 1, None),
            *((f"postgresql, {n} workers", n, "pg") for n in (1, 2, 4)),
        ]:
            folder = base / label.replace(", ", "-").replace(" ", "")
            folder.mkdir()
            config = write_setup(folder, args.subscribers, args.papers)
            url = cluster.new_database() if store else None
            wall, cpu = run_workers(folder, config, workers, url)
            files = len(list((folder / "outbox").glob("*.eml")))
            expected = files if expected is None else expected
            if files != expected:
                sys.exit(f"{label}: {files} messages, where one sender wrote {expected}")
            results[label] = (wall, cpu)
            print(f"  {label:24} {wall:6.1f} s wall, {files / wall:5.0f} msgs/s, "
                  f"CPU {cpu:6.1f} s")  # fmt: skip
            shutil.rmtree(folder / "outbox")
        base_cpu = results["sqlite, 1 sender"][1]
        one_cpu = results["postgresql, 1 workers"][1]
        assert expected is not None
        per_message = (one_cpu - base_cpu) / expected * 1000
        print(f"  coordination through PostgreSQL: {per_message:+.2f} ms CPU per message "
              f"({one_cpu / base_cpu:.2f}x SQLite's CPU)")  # fmt: skip
        for n in (2, 4):
            wall = results[f"postgresql, {n} workers"][0]
            print(f"  {n} workers vs 1: {results['postgresql, 1 workers'][0] / wall:.2f}x wall")


if __name__ == "__main__":
    main()
