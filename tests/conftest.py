"""Shared fixtures: a real local HTTP server (127.0.0.1, a free port, in a thread) that plays
scripted responses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.postgres_cluster import Cluster, running_cluster


@dataclass
class Reply:
    """One scripted response; ``hang`` keeps the request waiting until the test ends."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False


@dataclass
class Script:
    """Responses per path (consumed in order; the last one repeats) and what was asked."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def take(self, path: str, headers: dict[str, str]) -> Reply:
        """Record a request and count it in flight until ``done``; its scripted reply."""
        with self.lock:
            self.requests.append((path, headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            queue = self.replies.get(path) or self.replies.get("*") or [Reply(404)]
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1


class LocalServer:
    """The running server: its base URL and its script."""

    def __init__(self, script: Script, port: int) -> None:
        self.script = script
        self.url = f"http://127.0.0.1:{port}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.script.requests]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = script.take(self.path, dict(self.headers.items()))
            try:
                if reply.hang:
                    script.release.wait(10)
                    return
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            finally:
                script.done()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output clean

    return Handler


@pytest.fixture
def server() -> Iterator[LocalServer]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield LocalServer(script, httpd.server_address[1])
    finally:
        script.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server for the whole session (skipped without the binaries)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = pg_cluster.new_database()
    yield url
    pg_cluster.drop_database(url)


# End to end: through subprocesses, real servers, PostgreSQL, a browser or real deadlines. They
# are the suite's proof, and `.ci/run` runs them all; `pytest -m "not slow"` leaves them out for
# a fast loop while working (the unit tests of every module stay in it).
END_TO_END = frozenset(
    {
        "tests.test_run_smtp", "tests.test_dispatch", "tests.test_deadlines",
        "tests.test_channel_down", "tests.test_pipeline_field", "tests.test_hostile_delivery",
        "tests.test_kill_loops", "tests.test_plugins", "tests.test_bad_input",
        "tests.test_cli_streams", "tests.test_commands", "tests.test_cli",
        "tests.server.test_app", "tests.server.test_browser", "tests.server.test_hosting",
        "tests.server.test_reader",
        "tests.schedule.test_service", "tests.schedule.test_serve_service",
        "tests.deliver.test_webhook", "tests.store.test_transfer", "tests.store.test_postgres",
        "tests.store.test_damaged", "tests.store.test_lock", "tests.sources.test_limits",
        "tests.sources.test_hf_api_paging", "tests.render.test_email_browser",
        "tests.render.test_preview_browser", "tests.render.test_preview",
    }
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in END_TO_END:
            item.add_marker(pytest.mark.slow)
