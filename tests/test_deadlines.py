"""Deadlines, not per-read timeouts: servers that drip an answer one byte at a time cannot hold
`digest run` past its deadlines, and the next run (against working servers) delivers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.smtp_server import Handler, smtp_server

PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"
DEADLINE = 3.0
# A hang guard, not a speed test: without deadlines these runs last as long as the drip does.
MARGIN = 15.0


class Dripper:
    """A TCP server that answers every connection with ``text``, one byte every ``pause`` s,
    after reading what the client sends first (``read_first``)."""

    def __init__(self, text: bytes, *, read_first: bool, pause: float = 0.4) -> None:
        self.text = text
        self.read_first = read_first
        self.pause = pause
        self.stop = threading.Event()
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.read_first:
                    conn.recv(65536)
                for byte in self.text * 100:
                    if self.stop.wait(self.pause):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def drippers() -> Iterator[list[Dripper]]:
    made: list[Dripper] = []
    yield made
    for dripper in made:
        dripper.close()


def write_config(folder: Path, *, api: str | None, smtp_port: int) -> Path:
    if not (folder / "pages").exists():
        shutil.copytree(PAGES, folder / "pages")
    source = f'[[sources]]\nkind = "hf-api"\nurl = "{api}"\ndays = 2\n' if api else ""
    text = (
        f"[fetch]\ntimeout = 2\ndeadline = {DEADLINE}\nretries = 1\nbackoff = 0.1\n"
        + source
        + '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "smtp"\nfrom = "Digest <digest@example.org>"\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        f"timeout = 2\ndeadline = {DEADLINE}\nretries = 2\n"
    )
    for n in range(6):
        text += f'[[subscribers]]\nemail = "r{n}@example.org"\nkeywords = ["model"]\n'
    path = folder / "digest.toml"
    path.write_text(text)
    return path


def run(config: Path) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=config.parent,
    )
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def test_a_dripping_smtp_greeting_stops_the_sends_at_the_deadline(
    tmp_path: Path, drippers: list[Dripper]
) -> None:
    greeting = Dripper(b"220 slow.example ESMTP\r\n", read_first=False)
    drippers.append(greeting)
    code, out, err, took = run(write_config(tmp_path, api=None, smtp_port=greeting.port))
    assert code == 1, (out, err)
    assert "deadline" in err and "Traceback" not in err
    assert took < DEADLINE + MARGIN
    # A server that did not greet in time is not asked again for every subscriber, and one line
    # says so: nothing sent, every digest owed, nobody's bounce count moved.
    assert greeting.connections == 1
    (line,) = [line for line in err.splitlines() if "channel is unavailable" in line]
    assert "nothing was sent" in line and "6 digests stay owed" in line

    handler = Handler()
    with smtp_server(handler) as server:
        code, out, err, _ = run(write_config(tmp_path, api=None, smtp_port=server.port))
    assert code == 0, (out, err)
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        f"r{n}@example.org" for n in range(6)
    ]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n",  # headers drip
        None,  # headers at once, then the body drips
    ],
    ids=["headers", "body"],
)
def test_a_dripping_http_source_fails_at_its_deadline_and_the_rest_goes_out(
    tmp_path: Path, drippers: list[Dripper], answer: bytes | None
) -> None:
    api = _BodyDripper() if answer is None else Dripper(answer, read_first=True)
    drippers.append(api)
    handler = Handler()
    with smtp_server(handler) as server:
        config = write_config(
            tmp_path, api=f"http://127.0.0.1:{api.port}/api", smtp_port=server.port
        )
        code, out, err, took = run(config)
    assert code == 1, (out, err)
    failures = [line for line in err.splitlines() if "source failed" in line]
    assert len(failures) == 2 and all("deadline" in line for line in failures), err
    assert took < 2 * DEADLINE + MARGIN  # two days requested at once, each within its deadline
    assert len(handler.received) == 6  # the pages still went out

    code, out, err, _ = run(write_config(tmp_path, api=None, smtp_port=server.port))
    assert code == 0, (out, err)


class _BodyDripper(Dripper):
    """Sends its headers at once, then the body one byte at a time."""

    def __init__(self) -> None:
        super().__init__(b"[" + b" " * 1000, read_first=True)

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                for byte in self.text:
                    if self.stop.wait(self.pause):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return
