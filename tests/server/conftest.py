"""A configured folder, a real run that wrote messages, and `digest serve` on a free port."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.smtp_server import free_port

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "text-pages"
SECRET = "test-secret-of-the-unsubscribe-links"
READERS = {
    "ada@example.org": "tensor",
    "bob@example.org": "embedding",
    "cy@example.org": "semantic",
}


@dataclass
class Site:
    """The folder, the config, the port `digest serve` listens on, and how to run commands."""

    folder: Path
    config: Path
    port: int

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
        env["DIGEST_SERVER_SECRET"] = SECRET
        return env

    def digest(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(self.config), *args],
            cwd=self.folder,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def messages(self) -> dict[str, EmailMessage]:
        """The newest message the run wrote for each subscriber."""
        found: dict[str, EmailMessage] = {}
        for path in sorted((self.folder / "outbox").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found[str(message["To"].addresses[0].addr_spec)] = message
        return found

    def unsubscribe_url(self, address: str) -> str:
        header = str(self.messages()[address]["List-Unsubscribe"])
        return next(part.strip("<> ") for part in header.split(",") if "http" in part)

    def statuses(self) -> dict[str, str]:
        done = self.digest("subscribers", "list")
        assert done.returncode == 0, done.stderr
        rows = [line.split() for line in done.stdout.splitlines()[1:]]
        return {row[0]: row[1] for row in rows}


def make_site(folder: Path) -> Site:
    shutil.copytree(PAGES, folder / "pages")
    port = free_port()
    text = (
        '[digest]\ntitle = "Daily Papers digest"\n'
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\n'
        'from = "Paper Digest <digest@example.org>"\n'
        f'[server]\nbase_url = "http://127.0.0.1:{port}"\nport = {port}\n'
    )
    for address, keyword in READERS.items():
        text += f'[[subscribers]]\nemail = "{address}"\nkeywords = ["{keyword}"]\n'
    config = folder / "digest.toml"
    config.write_text(text, encoding="utf-8")
    return Site(folder, config, port)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A folder whose first run has written one message per subscriber."""
    site = make_site(tmp_path)
    done = site.digest("run", "--date", "2026-11-23")
    assert done.returncode == 0, done.stderr
    assert set(site.messages()) == set(READERS)
    return site


def wait_until_serving(process: subprocess.Popen[str], port: int) -> None:
    """Return once `digest serve` (``process``) answers its health check on ``port``."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).text == "ok":
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "digest serve did not come up"
        time.sleep(0.1)


@contextmanager
def serving(site: Site) -> Iterator[subprocess.Popen[str]]:
    """`digest serve` of ``site`` running on its port, stopped on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(site.config), "serve"],
        cwd=site.folder, env=site.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until_serving(process, site.port)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def served(site: Site) -> Iterator[Site]:
    """``site`` with `digest serve` running on its port."""
    with serving(site):
        yield site
