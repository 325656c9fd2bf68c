"""The public API: what ``digest.__all__`` names, a snapshot kept here so a change to it is a
decision; each name resolves, and importing the package loads none of the stages."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import httpx
from starlette.testclient import TestClient

import digest
from digest import Digest, load_config
from digest.unsubscribe import UnsubscribeLinks

PUBLIC = [
    "Batch", "Config", "ConfigError", "DeliveryError", "Digest", "DigestError", "Match", "Paper",
    "Registry", "Rendered", "RunReport", "SourceError", "StoreError", "Subscriber",
    "__version__", "load_config", "parse_config",
]  # fmt: skip
PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"


def test_the_public_api_is_what_the_snapshot_says() -> None:
    assert sorted(digest.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(digest, name) is not None


def test_importing_the_package_loads_no_stage() -> None:
    code = "import sys, digest; print(sorted(m for m in sys.modules if m.startswith('digest')))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "['digest']"


def test_a_dry_run_from_python_with_an_injected_clock_and_network(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text(
        f'[[sources]]\nkind = "page"\npath = "{PAGES}/*.txt"\n'
        f'[[sources]]\nkind = "hf-api"\nurl = "https://example.test/api"\ndays = 1\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["reasoning"]\n'
    )
    asked: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json=[])

    core = Digest(
        load_config(tmp_path / "digest.toml"),
        clock=lambda: dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC),
        http=httpx.MockTransport(api),
    )
    report = core.run(dry_run=True)
    assert report.day == dt.date(2026, 11, 23) and report.dry_run
    assert report.new == 178 and report.outcomes[0].papers > 0
    assert asked == ["https://example.test/api?date=2026-11-23&limit=100&p=0"]
    assert not (tmp_path / "digest.db").exists()  # a dry run changes nothing


def test_the_readers_pages_mount_from_python(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text(
        '[server]\nbase_url = "https://digest.example.org"\nsecret_env = "TEST_SECRET"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["reasoning"]\n'
    )
    secret = "a-long-enough-test-secret-value"
    core = Digest(load_config(tmp_path / "digest.toml"), env={"TEST_SECRET": secret})
    core.open_store().close()  # the pages read a store that exists
    links = UnsubscribeLinks("https://digest.example.org", secret.encode())
    with TestClient(core.app()) as client:
        assert client.get("/healthz").status_code == 200
        page = client.get(links.preferences_url("ada@example.org").removeprefix(links.base_url))
        assert page.status_code == 200 and "reasoning" in page.text
        assert client.get("/p/forged.token").status_code == 403
