"""A local stand-in for Hugging Face's ``/api/daily_papers``, paging as the real one does.

``limit`` entries of page ``p`` (from 0): 50 when ``limit`` is not given, at most 100 whatever is
asked; ``date``, ``week`` (``YYYY-Www``), ``month`` (``YYYY-MM``) and ``submitter`` select the
entries; a page past the end is ``[]``; an unknown path is HF's own 404 body. The entries are real
API entries from the samples, copied under new ids where a test needs more of them than a real
day has.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HF = Path(__file__).parent.parent / "fixtures" / "samples" / "hf"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
NOT_FOUND = {"error": "Sorry, we can't find the page you are looking for."}


def real_entries() -> list[dict[str, Any]]:
    """Every entry of the API samples, each paper once."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(HF.glob("api_*.json")):
        for entry in json.loads(path.read_text(encoding="utf-8")):
            entries.setdefault(entry["paper"]["id"], entry)
    return list(entries.values())


def day_of(count: int, day: dt.date, *, submitter: str = "akhaliq") -> list[dict[str, Any]]:
    """``count`` real entries listed on ``day``, under ids of that day where they run out."""
    pool = real_entries()
    entries = []
    for n in range(count):
        entry = json.loads(json.dumps(pool[n % len(pool)]))
        if n >= len(pool):
            entry["paper"]["id"] = f"{day:%y%m}.{90000 + n:05d}"
        entry["publishedAt"] = f"{day.isoformat()}T12:00:00.000Z"
        entry["submittedBy"] = {"name": submitter, "fullname": submitter}
        entries.append(entry)
    return entries


class HfApi:
    """The entries per listing day, and every query the server was asked."""

    def __init__(self) -> None:
        self.days: dict[dt.date, list[dict[str, Any]]] = {}
        self.queries: list[dict[str, str]] = []
        self.url = ""
        self.fail_page: int | None = None  # answer 503 for this page number

    def listed(self, query: dict[str, str]) -> list[dict[str, Any]] | None:
        """The entries the query selects, in the day's order; None for a malformed query."""
        wanted: list[dt.date]
        try:
            if "date" in query:
                wanted = [dt.date.fromisoformat(query["date"])]
            elif "week" in query:
                iso_year, iso_week = (int(part) for part in query["week"].split("-W"))
                wanted = [dt.date.fromisocalendar(iso_year, iso_week, d) for d in range(1, 8)]
            elif "month" in query:
                year, month = map(int, query["month"].split("-"))
                wanted = [d for d in self.days if (d.year, d.month) == (year, month)]
            else:
                wanted = sorted(self.days, reverse=True)[:1]
        except ValueError:
            return None
        found = [e for day in sorted(wanted) for e in self.days.get(day, [])]
        if "submitter" in query:
            found = [e for e in found if e["submittedBy"]["name"] == query["submitter"]]
        return found


def _handler(api: HfApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            api.queries.append(query)
            listed = api.listed(query) if parts.path == "/api/daily_papers" else None
            if listed is None:
                return self._answer(404, NOT_FOUND)
            limit = min(int(query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
            page = int(query.get("p", 0))
            if page == api.fail_page:
                return self._answer(503, {"error": "Service Unavailable"})
            self._answer(200, listed[page * limit : (page + 1) * limit])

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def hf_api() -> Iterator[HfApi]:
    """A running stand-in; ``api.url`` is its ``/api/daily_papers`` endpoint."""
    api = HfApi()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{httpd.server_address[1]}/api/daily_papers"
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()
