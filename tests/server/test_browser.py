"""The unsubscribe page in headless Chromium (Debian's ``chromium``, installed by ``.ci/run``):
the link from a message a real run wrote, the page opened, the button clicked, the confirmation
shown, and the next run skips that subscriber and nobody else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.cdp import CHROMIUM, Browser
from tests.server.conftest import Site

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)


def test_clicking_unsubscribe_in_a_browser(served: Site, tmp_path: Path) -> None:
    url = served.unsubscribe_url("bob@example.org")
    with Browser(tmp_path / "profile") as browser:
        browser.open(url)
        assert browser.evaluate("document.querySelector('h1').textContent") == "Unsubscribe?"
        assert "bob@example.org" in browser.evaluate("document.body.innerText")
        # readable on a phone: the page says so, and nothing is wider than the window
        assert browser.evaluate("document.querySelector('meta[name=viewport]') !== null")
        assert served.statuses()["bob@example.org"] == "active"  # opening it changed nothing

        browser.click("button")
        heading = browser.evaluate("document.querySelector('h1').textContent")
        assert heading == "You are unsubscribed"
        assert browser.evaluate("document.querySelector('button').textContent") == (
            "Subscribe again"
        )
        assert browser.evaluate("document.cookie") == ""

    assert served.statuses() == {
        "ada@example.org": "active",
        "bob@example.org": "unsubscribed",
        "cy@example.org": "active",
    }
    done = served.digest("run", "--date", "2026-11-24", "-v")
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stdout.splitlines() if "unsubscribed since" in line]
    assert len(skipped) == 1 and skipped[0].strip().startswith("bob@example.org")
