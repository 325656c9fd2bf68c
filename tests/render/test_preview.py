"""The preview folder and ``digest preview`` as a user meets them: the folder holds only this
preview, the index says which emails ``run`` would not send, ``--open`` opens what was asked, and
the starter config's emails link every paper."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from digest.render import Renderer
from digest.render.preview import MANIFEST, write_preview
from tests.render.test_render import ADA, DAY, api_papers, config, matches, subscriber

BOB = subscriber(email="bob@example.org", name="Bob")


def digest(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DIGEST_CONFIG", "BROWSER")}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env={**clean, **(env or {})},
    )  # fmt: skip


def test_a_second_preview_removes_what_the_first_wrote_and_nothing_else(tmp_path: Path) -> None:
    renderer = Renderer(config())
    found = matches(api_papers("api_2024-03-21.json"))[:2]
    ada = renderer.render(ADA, found, day=DAY, new_count=2, matched_count=2)
    bob = renderer.render(BOB, found, day=DAY, new_count=2, matched_count=2)
    out = tmp_path / "preview"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a file the user keeps there
    write_preview(out, [(ADA, ada), (BOB, bob)])
    assert (out / "bob-example-org.html").exists()
    write_preview(out, [(ADA, ada)])  # Bob left the config
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.html", "ada-example-org.html", "ada-example-org.txt", "notes.txt", MANIFEST]
    )


def test_a_manifest_cannot_make_the_preview_delete_outside_its_folder(tmp_path: Path) -> None:
    out, outside = tmp_path / "preview", tmp_path / "precious.txt"
    out.mkdir()
    outside.write_text("keep")
    (out / MANIFEST).write_text(f"../precious.txt\n{outside}\n")
    write_preview(out, [])
    assert outside.read_text() == "keep"


def test_the_index_names_the_emails_run_would_not_send(tmp_path: Path) -> None:
    renderer = Renderer(config())
    empty = renderer.render(BOB, [], day=DAY, new_count=3, matched_count=0)
    full = renderer.render(ADA, matches(api_papers("api_2024-03-21.json"))[:1], day=DAY,
                           new_count=3, matched_count=1)  # fmt: skip
    paths = write_preview(tmp_path, [(ADA, full), (BOB, empty)], {BOB.email: "no papers matched"})
    index = paths[0].read_text(encoding="utf-8")
    assert "1 of them <code>digest run</code> would not send" in index
    bob_entry = index[index.index("bob@example.org") :]
    assert "not sent by <code>digest run</code>: no papers matched" in bob_entry
    assert "not sent" not in index[index.index("ada@example.org") : index.index("bob@example.org")]


def _starter(folder: Path) -> None:
    assert digest("init", cwd=folder).returncode == 0


def test_preview_open_opens_the_subscribers_email(tmp_path: Path) -> None:
    _starter(tmp_path)
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    env = {"BROWSER": str(browser)}
    done = digest("preview", "--subscriber", "grace@example.org", "--open", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    done = digest("preview", "--open", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    first, second = opened.read_text().split()
    assert first.endswith("/preview/grace-example-org.html")
    assert second.endswith("/preview/index.html")


class Cards(HTMLParser):
    """The hrefs inside each paper card (a table whose id starts with ``paper-``)."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.cards: dict[str, list[str]] = {}
        self._depth: list[str | None] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            card = found.get("id") or ""
            self._depth.append(card if card.startswith("paper-") else None)
            if card.startswith("paper-"):
                self.cards[card] = []
        if tag == "a" and found.get("href"):
            inside = [c for c in self._depth if c]
            if inside:
                self.cards[inside[-1]].append(found["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth.pop()


def test_the_starter_preview_links_every_paper(tmp_path: Path) -> None:
    _starter(tmp_path)
    done = digest("preview", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    emails = sorted((tmp_path / "preview").glob("*.html"))
    emails = [p for p in emails if p.name != "index.html"]
    assert emails
    total = 0
    for page in emails:
        cards = Cards(page.read_text(encoding="utf-8")).cards
        total += len(cards)
        for card, hrefs in cards.items():
            assert any(h.startswith("https://") for h in hrefs), (page.name, card, hrefs)
        text = page.with_suffix(".txt").read_text(encoding="utf-8")
        numbered = re.split(r"\n(?=\s?\d+\.\s)", text)
        papers = [block for block in numbered if re.match(r"\s?\d+\.\s", block)]
        # each card of the text part (after the overview) carries a URL of its own
        cards_text = papers[len(papers) - len(cards) :]
        assert len(cards_text) == len(cards)
        for block in cards_text:
            assert re.search(r"https://\S+", block), block[:200]
    assert total >= 5


def test_the_starter_digest_links_every_card_to_its_hugging_face_page(tmp_path: Path) -> None:
    _starter(tmp_path)
    done = digest("preview", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    emails = [p for p in sorted((tmp_path / "preview").glob("*.html")) if p.name != "index.html"]
    cards = 0
    for page in emails:
        for card, hrefs in Cards(page.read_text(encoding="utf-8")).cards.items():
            paper_id = card.removeprefix("paper-").replace("-", ".")
            assert f"https://huggingface.co/papers/{paper_id}" in hrefs, (page.name, card)
            assert not any("?q=" in h for h in hrefs), (page.name, card, hrefs)  # no search link
            cards += 1
    assert cards >= 10  # real ids, links and AI summaries: the demo shows what a real day gives
    text = (tmp_path / "preview" / "ada-example-org.txt").read_text(encoding="utf-8")
    assert "arXiv: https://arxiv.org/abs/" in text and "▲" in text
