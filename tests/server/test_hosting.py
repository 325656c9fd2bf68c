"""`digest serve` as an operator hosts it: under a path behind a proxy, on a busy port, over
http, and while a run holds the store."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Site, make_site, serving
from tests.smtp_server import free_port


@contextmanager
def prefix_proxy(prefix: str, upstream: int) -> Iterator[int]:
    """A reverse proxy on a free port that serves ``prefix`` from ``upstream``'s root, as
    nginx's ``location /digest/ { proxy_pass http://127.0.0.1:PORT/; }`` does."""

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            if not self.path.startswith(prefix + "/"):
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            answer = httpx.request(
                self.command,
                f"http://127.0.0.1:{upstream}{self.path.removeprefix(prefix)}",
                content=body,
                headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            )
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def site_under(folder: Path, base_url_of: str) -> Site:
    site = make_site(folder)
    site.config.write_text(
        site.config.read_text().replace(
            f'base_url = "http://127.0.0.1:{site.port}"', f'base_url = "{base_url_of}"'
        )
    )
    done = site.digest("run", "--date", "2026-11-23")
    assert done.returncode == 0, done.stderr
    return site


def test_links_work_under_a_base_url_with_a_path_behind_a_proxy(tmp_path: Path) -> None:
    proxy_port = free_port()
    site = site_under(tmp_path, f"http://127.0.0.1:{proxy_port}/digest")
    url = site.unsubscribe_url("ada@example.org")
    assert url.startswith(f"http://127.0.0.1:{proxy_port}/digest/u/")
    with serving(site), prefix_proxy("/digest", site.port) as port:
        assert port  # the proxy listens where base_url says (its port was free a moment ago)
        url = url.replace(f":{proxy_port}/", f":{port}/")
        page = httpx.get(url)
        assert page.status_code == 200 and "ada@example.org" in page.text
        assert '<form method="post">' in page.text  # posts back to this very address
        # the page's button, as a browser sends it: to the page's own address
        done = httpx.post(url, data={"action": "unsubscribe"})
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        assert site.statuses()["ada@example.org"] == "unsubscribed"
        back = httpx.post(url, data={"action": "resubscribe"})
        assert back.status_code == 200 and site.statuses()["ada@example.org"] == "active"
        # the one-click POST a mail provider makes to the List-Unsubscribe URL
        one_click = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200
        assert site.statuses()["ada@example.org"] == "unsubscribed"
        # and without a stripping proxy, the app answers under the path itself
        direct = url.replace(f"127.0.0.1:{port}/digest", f"127.0.0.1:{site.port}/digest")
        assert httpx.get(direct).status_code == 200


def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.port))
        taken.listen()
        done = site.digest("serve")
    assert done.returncode == 2
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("digest: error:")]
    assert "the port is in use" in line and str(site.port) in line
    assert "Traceback" not in done.stderr


def test_an_http_base_url_is_warned_about(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    with serving(site) as process:
        pass
    assert "only POST one-click unsubscribes to https" in (
        process.stderr.read() if process.stderr else ""
    )


@pytest.mark.slow
def test_a_one_click_while_a_run_holds_the_store_is_kept_and_applied(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    assert site.digest("run", "--date", "2026-11-23").returncode == 0
    url = site.unsubscribe_url("bob@example.org")
    with serving(site):
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sqlite3, sys, time\n"
             "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "db.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(15)\n"
             "db.execute('COMMIT')",
             str(site.folder / "digest.db")],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        answer = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < 14  # answered while the store was still held
        holder.wait(timeout=60)
        deadline = time.monotonic() + 30
        while site.statuses().get("bob@example.org") != "unsubscribed":
            assert time.monotonic() < deadline, "the queued unsubscribe never reached the store"
            time.sleep(0.5)
    with sqlite3.connect(site.folder / "digest.db") as db:
        how = db.execute("SELECT how FROM subscribers WHERE email = 'bob@example.org'").fetchone()
    assert how == ("one-click",)
