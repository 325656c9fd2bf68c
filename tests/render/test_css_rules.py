"""The stylesheet resolved once per run gives premailer's output byte for byte, or steps aside."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.models import Match
from digest.render import Renderer, css_rules
from digest.render.css_rules import LocalStylesheet
from digest.render.inline import Inliner, premailer_transform
from tests.render.test_render import api_papers, config, matches, subscriber

DAYS = ["api_2024-03-21.json", "api_2025-03-24.json", "api_2025-10-06.json",
        "api_2026-07-31_limit30.json"]  # fmt: skip
READERS = [
    ["language model", "reasoning", "agent"],
    ["diffusion", "video", "image", "3D"],
    ["benchmark", "dataset", "evaluation", "vision"],
]


def page(css: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<style>\n{css}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def test_real_days_emails_are_premailers_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every email of three readers on four real days, with the resolved stylesheet and with
    whole premailer passes: the same bytes, and the resolved one never runs premailer."""
    resolved = Renderer(config())
    emails: list[tuple[str, list[Match], dt.date]] = []
    for day_file in DAYS:
        papers = api_papers(day_file)
        day = max(p.published or dt.date(2025, 1, 1) for p in papers)
        for n, keywords in enumerate(READERS):
            found = matches(papers, keywords)[: 8 + 4 * n]
            emails.append((f"r{n}@example.org", found, day))
    fast = [
        resolved.render(subscriber(email=email, keywords=["x"]), found, day=day,
                        new_count=len(found) + 3, matched_count=len(found)).html
        for email, found, day in emails
    ]  # fmt: skip
    assert resolved.inliner.premailer_runs == 0
    assert resolved.inliner.shapes_inlined > 20  # real days give many card shapes
    assert sum(html.count('class="card"') for html in fast) > 60

    monkeypatch.setattr(css_rules.LocalStylesheet, "of", classmethod(lambda cls, sheets: None))
    whole = Renderer(config())
    slow = [
        whole.render(subscriber(email=email, keywords=["x"]), found, day=day,
                     new_count=len(found) + 3, matched_count=len(found)).html
        for email, found, day in emails
    ]  # fmt: skip
    assert whole.inliner.premailer_runs == whole.inliner.shapes_inlined > 20
    for fast_html, slow_html in zip(fast, slow, strict=True):
        assert fast_html == slow_html


CASES = {
    "inline style wins and keeps its place": (
        ".note { color: red; margin: 0 }\np { font-size: 12px }",
        '<p style="color: blue" class="note" title="x">Hi</p><p>plain</p>',
    ),
    "width and background become attributes, existing ones overwritten": (
        ".box { width: 300px; background-color: #abc; text-align: center; vertical-align: top }",
        '<table width="100%" class="box"><tr><td class="box">x</td></tr></table>',
    ),
    "a floating image is aligned": (
        "img.pic { float: right; margin: 4px }",
        '<img class="pic" src="https://e.org/a.png" alt="a"><img src="https://e.org/b.png">',
    ),
    "ids, several classes, !important and specificity": (
        "#top { color: green } .a.b { color: red !important } .a { color: blue; padding: 1px }",
        '<div id="top" class="a b">x</div><div class="b a">y</div><div class="a">z</div>',
    ),
    "no leftover rules: the style element goes": (
        "p { margin: 0 }",
        "<p>one</p>\n<p>two &amp; three</p>",
    ),
    "media rules stay, made important": (
        "p { margin: 0 } @media (max-width: 400px) { p { margin: 2px } }",
        "<p>one</p>",
    ),
    "unset properties are dropped": (
        ".x { color: red } .x.y { color: unset }",
        '<span class="x y">u</span><span class="x">v</span>',
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_transform_is_premailers(case: str) -> None:
    css, body = CASES[case]
    html = page(css, body)
    resolved = LocalStylesheet.of([f"\n{css}\n"])
    assert resolved is not None
    assert resolved.transform(html) == premailer_transform(html)


@pytest.mark.parametrize(
    "css",
    [".card p { color: red }", "a[href] { color: red }", "li:first-child { margin: 0 }",
     "td > p { margin: 0 }", "p + p { margin: 0 }", "p ~ p { margin: 0 }"],
)  # fmt: skip
def test_selectors_beyond_the_element_leave_it_to_premailer(css: str) -> None:
    assert LocalStylesheet.of([css]) is None
    html = page(css, '<ul><li><a href="https://e.org/">x</a></li></ul><td><p>q</p><p>r</p></td>')
    inliner = Inliner(css)
    assert inliner.document(html) == premailer_transform(html)
    assert inliner.premailer_runs == 1


def test_documents_it_cannot_replay_go_to_premailer() -> None:
    css = "p { margin: 0 }"
    resolved = LocalStylesheet.of([css])
    assert resolved is not None
    with_media = f'<html><head><style media="print">{css}</style></head><body><p>x</p></body>'
    other_sheet = "<html><head><style>b { color: red }</style></head><body><b>x</b></body></html>"
    assert resolved.transform(with_media) is None
    assert resolved.transform(other_sheet) is None
    inliner = Inliner(css)
    assert inliner.document(with_media) == premailer_transform(with_media)
    assert inliner.premailer_runs == 1


def test_each_element_kind_is_resolved_once() -> None:
    css = ".a { color: red } p { margin: 0 }"
    resolved = LocalStylesheet.of([css])
    assert resolved is not None
    body = "".join(f'<p class="a">{n}</p><p>{n}</p>' for n in range(200))
    assert resolved.transform(page(css, body).replace(f"\n{css}\n", css)) is not None
    # html, head, meta, body, p.a, p (the style element is gone): six, however many paragraphs
    assert resolved.kinds_resolved == 6
