"""A 15-paper digest in headless Chromium on a 375 px phone screen: the overview is in the
first screen, every title is a link that looks like one, the overview jumps to its card."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.render import Renderer
from digest.render.preview import write_preview
from tests.render.test_preview_browser import png_summary
from tests.render.test_render import ADA, api_papers, config, matches
from tests.server.cdp import CHROMIUM, Browser

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
PHONE = {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True}


@pytest.fixture(scope="module")
def email(tmp_path_factory: pytest.TempPathFactory) -> Path:
    papers = api_papers("api_2025-10-06.json") + api_papers("api_2024-03-21.json")
    found = matches(papers)[:15]
    assert len(found) == 15
    rendered = Renderer(config()).render(
        ADA, found, day=dt.date(2025, 10, 6), new_count=40, matched_count=15
    )
    return write_preview(tmp_path_factory.mktemp("email"), [(ADA, rendered)])[1]


@pytest.fixture
def phone(tmp_path: Path, email: Path) -> Iterator[Browser]:
    with Browser(tmp_path / "profile") as browser:
        browser.call("Emulation.setDeviceMetricsOverride", PHONE, session=True)
        browser.open(email.as_uri())
        yield browser


def test_the_overview_is_in_the_first_screen(phone: Browser, tmp_path: Path) -> None:
    box = phone.evaluate(
        "(() => { const r = document.querySelector('.overview-list').getBoundingClientRect();"
        " return [r.top, r.bottom, window.innerWidth, window.innerHeight,"
        " document.querySelectorAll('.overview-item').length]; })()"
    )
    top, _bottom, width, height, items = box
    assert (width, height) == (375, 812)
    assert items == 15
    assert 0 < top < height / 2, f"the overview starts at {top} px"
    first = phone.evaluate(
        "document.querySelector('.overview-item').getBoundingClientRect().bottom"
    )
    assert first < height
    shot = tmp_path / "phone.png"
    data = phone.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
    shot.write_bytes(base64.b64decode(data))
    assert png_summary(shot)[:2] == (375, 812)
    assert png_summary(shot)[3] > 0.01  # painted, not blank


def test_every_title_is_a_link_that_looks_like_one(phone: Browser) -> None:
    links = phone.evaluate(
        "[...document.querySelectorAll('.paper-title')].map(p => { const a = p.querySelector('a');"
        " if (!a) return null; const s = getComputedStyle(a);"
        " return [a.href, s.textDecorationLine, s.color]; })"
    )
    assert len(links) == 15
    assert all(link is not None for link in links), links
    for href, decoration, colour in links:
        assert href.startswith("https://"), href
        assert "underline" in decoration
        body = phone.evaluate("getComputedStyle(document.querySelector('.meta')).color")
        assert colour != body  # not the colour of the text around it


def test_an_overview_entry_jumps_to_its_card(phone: Browser) -> None:
    target = phone.evaluate(
        "(() => { const a = document.querySelectorAll('.overview-link')[11]; a.click();"
        " const card = document.querySelector(a.getAttribute('href'));"
        " return [card.getBoundingClientRect().top, window.scrollY]; })()"
    )
    top, scrolled = target
    assert scrolled > 812  # the twelfth card is further down the page
    assert abs(top) < 5  # and it is now at the top of the screen
