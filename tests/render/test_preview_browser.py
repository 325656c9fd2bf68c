"""A rendered preview, loaded in headless Chromium: it paints, shows every title, fits a phone.

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped when it is not
installed. Each check starts its own Chromium with a throwaway profile and no network features.
The viewport checks load the email inside a same-origin ``srcdoc`` iframe of the exact width
(headless Chromium will not make its window narrower than 500px for ``--dump-dom``), with a
probe script that reports the document's ``scrollWidth``.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from digest.render import Renderer
from digest.render.preview import write_preview
from tests.render.test_render import ADA, KEYWORDS, api_papers, config, matches

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
PROBE = (
    "<script>parent.document.body.setAttribute('data-probe', "
    "document.documentElement.scrollWidth + 'x' + window.innerWidth)</script>"
)


def chromium(tmp: Path, *args: str) -> str:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def png_summary(path: Path) -> tuple[int, int, tuple[int, int, int], float]:
    """Width, height, top-left RGB pixel and the share of non-zero filtered bytes of an 8-bit
    RGB(A) PNG, with zlib alone. A blank (one-colour) image filters to almost all zeros; a page
    of text does not."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), f"unexpected PNG format {depth}/{color}"
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * (4 if color == 6 else 3))
    # The first row's first pixel: filters "none", "sub" and "up" (row 0 has no row above)
    # and "average"/"paeth" all leave the first pixel of row 0 as stored.
    top_left = (raw[1], raw[2], raw[3])
    busy = 1 - raw.count(0) / len(raw)
    return width, height, top_left, busy


class Text(HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.feed(markup)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


@pytest.fixture(scope="module")
def preview(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("preview")
    renderer = Renderer(config())
    papers = api_papers("api_2025-10-06.json") + api_papers("api_2024-03-21.json")
    found = matches(papers, KEYWORDS)[:8]
    rendered = renderer.render(ADA, found, day=dt.date(2025, 10, 6), new_count=34, matched_count=8)
    paths = write_preview(out, [(ADA, rendered)])
    return paths[1], [m.paper.title for m in found]


def probe_widths(
    page: Path, tmp: Path, frames: dict[str, tuple[int, str]]
) -> dict[str, tuple[int, int]]:
    """``{name: (scrollWidth, innerWidth)}`` of each ``(width, extra body html)`` frame."""
    email = page.read_text(encoding="utf-8")
    iframes = []
    for name, (width, extra) in frames.items():
        probe = PROBE.replace("data-probe", f"data-probe-{name}")
        content = email.replace("</body>", extra + probe + "</body>", 1)
        iframes.append(
            f'<iframe style="width:{width}px;height:4000px;border:0;display:block" '
            f'srcdoc="{html.escape(content, quote=True)}"></iframe>'
        )
    frame = tmp / "frames.html"
    frame.write_text(
        '<!DOCTYPE html><html><body style="margin:0">' + "".join(iframes) + "</body></html>",
        encoding="utf-8",
    )
    dom = chromium(tmp, "--window-size=1200,1000", "--dump-dom", frame.as_uri())
    out = {}
    for name in frames:
        found = re.search(rf'data-probe-{name}="(\d+)x(\d+)"', dom)
        assert found, f"the probe script did not run in frame {name}"
        out[name] = (int(found.group(1)), int(found.group(2)))
    return out


def test_preview_dom_has_every_title(preview: tuple[Path, list[str]], tmp_path: Path) -> None:
    page, titles = preview
    dom = chromium(tmp_path, "--window-size=1200,2000", "--dump-dom", page.as_uri())
    text = Text(dom).text
    assert len(titles) >= 5
    for title in titles:
        assert title in text
    assert "Unsubscribe" in text


def test_no_horizontal_overflow_on_a_phone(preview: tuple[Path, list[str]], tmp_path: Path) -> None:
    page, _ = preview
    probed = probe_widths(
        page,
        tmp_path,
        {
            "w320": (320, ""),
            "w375": (375, ""),
            # The control: the same probe must see a page that is too wide.
            "wide": (375, '<div style="width:900px">x</div>'),
        },
    )
    for name, width in (("w320", 320), ("w375", 375)):
        scroll_width, viewport = probed[name]
        assert viewport == width
        assert scroll_width <= viewport, f"{scroll_width}px of content in a {width}px viewport"
    assert probed["wide"][0] > probed["wide"][1]


@pytest.mark.parametrize(
    ("width", "dark", "background"),
    [
        (375, False, (0xF3, 0xF4, 0xF6)),
        (1200, False, (0xF3, 0xF4, 0xF6)),
        (375, True, (0x0D, 0x11, 0x17)),
    ],
)
def test_screenshots_paint_the_email(
    preview: tuple[Path, list[str]],
    tmp_path: Path,
    width: int,
    dark: bool,
    background: tuple[int, int, int],
) -> None:
    page, _ = preview
    shot = tmp_path / f"shot-{width}-{'dark' if dark else 'light'}.png"
    extra = ["--force-dark-mode"] if dark else []
    chromium(tmp_path, *extra, f"--window-size={width},1600", f"--screenshot={shot}", page.as_uri())
    got_width, height, top_left, busy = png_summary(shot)
    assert (got_width, height) == (width, 1600)
    assert top_left == background  # the page background: light, or dark under dark mode
    assert busy > 0.01, f"the screenshot is (almost) blank: {busy:.4f} of its bytes vary"


def test_a_blank_page_counts_as_blank(tmp_path: Path) -> None:
    blank = tmp_path / "blank.html"
    blank.write_text('<!DOCTYPE html><html><body style="background:#f3f4f6"></body></html>')
    shot = tmp_path / "blank.png"
    chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", blank.as_uri())
    assert png_summary(shot)[3] < 0.01
