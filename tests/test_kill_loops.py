"""SIGKILL at random moments of `digest run`, again and again, on the file, Maildir and Atom
channels: nobody misses a digest, and each kill repeats at most the one message in flight."""

from __future__ import annotations

import email
import email.policy
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"
READERS = 1500
KILLS = 6


def write_config(folder: Path, method: str) -> Path:
    shutil.copytree(PAGES, folder / "pages")
    text = (
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        f'[delivery]\nmethod = "{method}"\noutbox = "outbox"\nmaildir = "Maildir"\n'
        'feeds = "feeds"\nfrom = "Digest <digest@example.org>"\n'
    )
    text += "".join(
        f'[[subscribers]]\nemail = "r{n}@example.org"\nmax_papers = 3\n' for n in range(READERS)
    )
    config = folder / "digest.toml"
    config.write_text(text, encoding="utf-8")
    return config


def written(folder: Path, method: str) -> int:
    """How many messages (feed files) the channel has written so far."""
    where = {"file": "outbox", "maildir": "Maildir/new", "atom": "feeds"}[method]
    try:
        return sum(1 for path in (folder / where).iterdir() if not path.name.startswith("."))
    except FileNotFoundError:
        return 0


def deliveries(folder: Path, method: str) -> Counter[str]:
    """How many times each reader's digest was delivered, as the channel shows it."""
    found: Counter[str] = Counter()
    if method == "atom":
        for feed in (folder / "feeds").glob("*.xml"):
            reader = feed.name.split("-example-org")[0] + "@example.org"
            ids = re.findall(r"<id>(urn:paper-digest:digest:[^<]+)</id>", feed.read_text())
            found[reader] += len(ids)  # a digest sent again replaces its own entry
        return found
    files = (
        (folder / "outbox").glob("*.eml")
        if method == "file"
        else (folder / "Maildir" / "new").iterdir()
    )
    for path in files:
        if path.name.startswith("."):
            continue  # a killed run's hidden temporary file: never a message to a reader
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[str(message["To"])] += 1
    return found


@pytest.mark.slow
@pytest.mark.parametrize("method", ["file", "maildir", "atom"])
def test_random_sigkills_lose_nothing_and_repeat_at_most_one_message_each(
    tmp_path: Path, method: str
) -> None:
    config = write_config(tmp_path, method)
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    argv = [sys.executable, "-m", "digest", "--config", str(config), "run"]
    chance = random.Random(f"kill-loop-{method}")
    kills = 0
    for _ in range(KILLS):
        before = written(tmp_path, method)
        if before >= READERS:
            break
        # a moment in the sends, chosen by how many messages are out (no clock to race)
        target = before + chance.randint(1, max(1, (READERS - before) // 3))
        run = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
        while run.poll() is None and written(tmp_path, method) < target:
            time.sleep(0.002)
        if run.poll() is None:
            run.send_signal(signal.SIGKILL)
            kills += 1
        run.wait(timeout=120)
    for expected in (0, 0):  # the rest, then a run with nothing left to do
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == expected, done.stderr
    assert "sent 0 of" in done.stdout
    got = deliveries(tmp_path, method)
    readers = {f"r{n}@example.org" for n in range(READERS)}
    assert set(got) == readers  # nobody missed their digest
    repeated = sum(count - 1 for count in got.values())
    assert kills > 0 and repeated <= kills, (kills, repeated)
