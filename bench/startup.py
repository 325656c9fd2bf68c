"""Benchmark: how long ``digest --help`` and ``digest check`` take to start, next to ``python``.

    .venv/bin/python bench/startup.py [--runs 15]

Each command runs as a fresh process (as a user or cron starts it), ``--runs`` times, on the
starter config in a temporary folder; the script prints the median wall time of each and its
excess over ``python -c pass`` measured in the same run, so a busy machine shifts all three
together. Target: ``digest --help`` within 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_seconds(command: list[str], runs: int, cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        config = cwd / "digest.toml"
        subprocess.run([sys.executable, "-m", "digest", "init", str(config)], check=True,
                       capture_output=True)  # fmt: skip
        python = median_seconds([sys.executable, "-c", "pass"], runs, cwd)
        rows = [("python -c pass", python)]
        for args in (["--help"], ["--config", str(config), "check"]):
            seconds = median_seconds([sys.executable, "-m", "digest", *args], runs, cwd)
            rows.append(("digest " + " ".join(a for a in args if a != str(config)), seconds))
    print(f"median of {runs} runs each (fresh processes)")
    for label, seconds in rows:
        extra = "" if label.startswith("python") else f"  (+{seconds - python:.3f} s over python)"
        print(f"  {label:<32} {seconds:.3f} s{extra}")
    help_time = rows[1][1]
    print(f"target: digest --help <= 0.300 s: {'met' if help_time <= 0.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
