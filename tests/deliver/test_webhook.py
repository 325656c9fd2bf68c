"""``method = "webhook"`` through `digest run`, against a real local HTTP endpoint: every digest
once, nothing the second time, a 500 leaves it owed, a 404/410 is the endpoint gone (nobody
suspended), a subscriber's own endpoint, and the chat services' body shapes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digest.store.sqlite import SqliteStore

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "text-pages"
READERS = {
    "ada@example.org": "tensor",
    "bob@example.org": "embedding",
    "cy@example.org": "semantic",
}


@dataclass
class Endpoint:
    """What was POSTed where, and the statuses to answer with (the last one repeats)."""

    url: str = ""
    answers: list[int] = field(default_factory=lambda: [200])
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def bodies(self, path: str = "/hook") -> list[dict[str, object]]:
        return [json.loads(body) for where, _, body in self.received if where == path]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                status = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
                if 200 <= status < 300:
                    state.received.append((self.path, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def write_config(folder: Path, url: str, extra: str = "", own: str = "") -> Path:
    if not (folder / "pages").exists():
        shutil.copytree(PAGES, folder / "pages")
    text = (
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "webhook"\nfrom = "Digest <digest@example.org>"\n'
        f'[delivery.webhook]\nurl = "{url}/hook"\n{extra}'
    )
    for address, keyword in READERS.items():
        text += (
            f'[[subscribers]]\nemail = "{address}"\nkeywords = ["{keyword}"]\nmax_papers = 500\n'
        )
        if own and address == "cy@example.org":
            text += f'webhook = "{own}"\n'
    config = folder / "digest.toml"
    config.write_text(text, encoding="utf-8")
    return config


def run(config: Path, day: str = "2026-11-02") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "run", "--date", day],
        capture_output=True, text=True, timeout=120, cwd=config.parent, env=env,
    )  # fmt: skip


def test_every_digest_is_posted_once_with_its_papers_links_and_why(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    config = write_config(tmp_path, endpoint.url)
    done = run(config)
    assert done.returncode == 0, done.stderr
    bodies = endpoint.bodies()
    assert sorted(b["subscriber"]["email"] for b in bodies) == sorted(READERS)  # type: ignore[index]
    for body in bodies:
        papers = body["papers"]
        assert isinstance(papers, list) and papers
        for paper in papers:
            assert paper["title"] and paper["why"] and paper["why"][0].startswith("matched ")
            assert paper["url"] is None or paper["url"].startswith("https://")
    assert all(h["Content-Type"] == "application/json" for _, h, _ in endpoint.received)
    again = run(config, "2026-11-03")
    assert again.returncode == 0 and len(endpoint.received) == len(READERS)  # nothing new


def test_a_500_leaves_the_digest_owed_for_the_next_run(tmp_path: Path, endpoint: Endpoint) -> None:
    endpoint.answers = [500, 200]
    config = write_config(tmp_path, endpoint.url)
    first = run(config)
    assert first.returncode == 1 and "HTTP 500" in first.stderr
    assert len(endpoint.received) == len(READERS) - 1
    second = run(config, "2026-11-03")
    assert second.returncode == 0, second.stderr
    assert sorted(b["subscriber"]["email"] for b in endpoint.bodies()) == sorted(READERS)  # type: ignore[index]


@pytest.mark.parametrize("gone", [404, 410])
def test_an_endpoint_gone_stops_sending_and_suspends_nobody(
    tmp_path: Path, endpoint: Endpoint, gone: int
) -> None:
    endpoint.answers = [gone]
    config = write_config(tmp_path, endpoint.url)
    for day in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"):
        done = run(config, day)
        assert done.returncode == 1
        (line,) = [ln for ln in done.stderr.splitlines() if "channel is unavailable" in ln]
        assert f"HTTP {gone}" in line and "3 digests stay owed" in line
    with SqliteStore.open(tmp_path / "digest.db", readonly=True) as store:
        states = store.subscriber_states()
    assert all(s.status == "active" and s.bounces == 0 for s in states.values())
    endpoint.answers = [200]
    done = run(config, "2026-11-06")
    assert done.returncode == 0 and len(endpoint.bodies()) == len(READERS)


def test_a_subscribers_own_endpoint_and_the_chat_shapes(tmp_path: Path, endpoint: Endpoint) -> None:
    config = write_config(tmp_path, endpoint.url, 'body = "slack"\n', own=f"{endpoint.url}/own")
    done = run(config)
    assert done.returncode == 0, done.stderr
    shared, own = endpoint.bodies("/hook"), endpoint.bodies("/own")
    assert len(shared) == 2 and len(own) == 1
    assert all(set(b) == {"text"} for b in shared + own)
    assert str(own[0]["text"]).startswith("Daily Papers digest")
