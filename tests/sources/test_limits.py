"""What one source may cost: a gzip bomb and a huge body from a real server stop at the size
limit with one line (peak memory measured on the real command), deep JSON, many entries."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digest.errors import ParseError
from digest.sources.hf_api import parse_api
from digest.sources.limits import Limits

MIB = 2**20


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed, made without ever holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * MIB
    parts = [packer.compress(zeros) for _ in range(size // MIB)]
    return b"".join([*parts, packer.flush()])


class Hostile(BaseHTTPRequestHandler):
    bomb = b""
    twice = b""

    def do_GET(self) -> None:
        if self.path == "/bomb":
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(self.bomb)))
            self.end_headers()
            self.wfile.write(self.bomb)
        elif self.path in ("/twice", "/two-headers"):  # gzip inside gzip
            self.send_response(200)
            if self.path == "/twice":
                self.send_header("Content-Encoding", "gzip, gzip")
            else:
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(self.twice)))
            self.end_headers()
            self.wfile.write(self.twice)
        elif self.path == "/corrupt-gzip":
            body = self.bomb[:4096] + b"\x00" * 64 + self.bomb[8192:16384]
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/short":  # announces more than it sends, then holds the line open
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"[" + b" " * 1000)
            self.wfile.flush()
            time.sleep(40)
        elif self.path == "/huge":  # no Content-Length: only reading it tells how big it is
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.end_headers()
            chunk = b"[" + b" " * (MIB - 1)
            for _ in range(200):
                try:
                    self.wfile.write(chunk)
                except OSError:
                    return  # the client gave up: what a limit is for
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    Hostile.bomb = gzip_bomb(1024 * MIB)  # 1 GiB of zeros in about 1 MB
    assert len(Hostile.bomb) < 2 * MIB
    Hostile.twice = zlib.compress(Hostile.bomb, wbits=31)  # the bomb gzipped once more: ~4 KB
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Linux keeps a process's peak RSS across exec, and a child starts from its parent's: measured
# straight from pytest (hundreds of MB once the embedding model is loaded) the figure would be
# pytest's. A small Python in between starts the command and reports its peak alone.
MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def fetch_measured(url: str, cwd: Path) -> tuple[int, str, int]:
    """``digest fetch --source URL``: its status, stderr and peak memory (KiB)."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "digest", "fetch", "--source", url],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    *lines, peak = done.stderr.rstrip("\n").split("\n")
    return done.returncode, "\n".join(lines), int(peak)


@pytest.mark.parametrize(("path", "what"), [("/bomb", "gzip bomb"), ("/huge", "200 MB body")])
def test_an_oversized_answer_is_one_line_and_little_memory(
    hostile: str, tmp_path: Path, path: str, what: str
) -> None:
    code, err, peak_kib = fetch_measured(hostile + path, tmp_path)
    errors = [line for line in err.splitlines() if line.startswith("digest: error:")]
    assert code == 1, err
    assert len(errors) == 1 and "8,000,000-byte limit" in errors[0], err
    assert "max_bytes" in errors[0] and "Traceback" not in err
    assert peak_kib < 200 * 1024, f"{what}: peak RSS {peak_kib // 1024} MiB"


def test_json_nested_too_deep_is_a_clear_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ParseError, match="nests") as caught:
        parse_api(deep, origin="deep.json")
    assert caught.value.where == "deep.json"
    shallow = "[" * 70 + "]" * 70
    with pytest.raises(ParseError, match="deeper than 64 levels"):
        parse_api(shallow, origin="nested.json")


def test_too_many_entries_is_a_clear_error() -> None:
    entries = ",".join(f'{{"paper": {{"id": "2401.{n:05d}", "title": "t"}}}}' for n in range(30))
    with pytest.raises(ParseError, match="30 entries, more than the limit of 20") as caught:
        parse_api(f"[{entries}]", origin="many.json", limits=Limits(max_entries=20))
    assert "max_entries" in (caught.value.hint or "")
    assert len(parse_api(f"[{entries}]", origin="many.json")) == 30


@pytest.mark.parametrize("path", ["/twice", "/two-headers"])
def test_gzip_inside_gzip_is_refused_in_one_line_and_little_memory(
    hostile: str, tmp_path: Path, path: str
) -> None:
    code, err, peak_kib = fetch_measured(hostile + path, tmp_path)
    errors = [line for line in err.splitlines() if line.startswith("digest: error:")]
    assert code == 1 and len(errors) == 1, err
    assert "only one gzip or deflate layer" in errors[0] and "Traceback" not in err
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib // 1024} MiB"


@pytest.mark.parametrize(
    ("path", "what"), [("/corrupt-gzip", "gzip body is corrupt"), ("/short", "timed out")]
)
def test_a_corrupt_or_short_body_is_one_line_within_the_deadline(
    hostile: str, tmp_path: Path, path: str, what: str
) -> None:
    (tmp_path / "digest.toml").write_text(
        "[fetch]\ntimeout = 2\ndeadline = 4\nretries = 1\nbackoff = 0.1\n"
        f'[[sources]]\nkind = "page"\nurl = "{hostile}{path}"\n'
    )
    started = time.monotonic()
    code, err, _ = fetch_measured(hostile + path, tmp_path)
    errors = [line for line in err.splitlines() if line.startswith("digest: error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert what in errors[0] or "deadline" in errors[0], errors[0]
    # a guard against hanging on the server, not a timing: the deadline bounds the wait
    assert time.monotonic() - started < 30
