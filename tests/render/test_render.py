"""The email itself: templates, highlights, CSS inlining, size budget, text part, previews.

Golden files: ``tests/fixtures/render/digest.html`` and ``digest.txt`` hold the email of a fixed
digest (fixed date, real papers from the API samples, a fixed subscriber). After an intended
change to the templates or the renderer, regenerate them and review the diff::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/render/test_render.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from digest.config import subscriber_from
from digest.errors import RenderError
from digest.models import Match, Paper, Span, Subscriber
from digest.render import Renderer, RenderSettings
from digest.render.highlight import highlight, merge_spans, shorten
from digest.render.inline import Inliner, pour, premailer_transform, skeleton, slots
from digest.render.preview import write_preview
from digest.render.views import english_date
from digest.unsubscribe import UnsubscribeLinks
from digest.untrusted import clean_text, safe_url

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAMPLES = FIXTURES / "samples" / "hf"
GOLDEN = FIXTURES / "render"
DAY = dt.date(2025, 10, 6)
KEYWORDS = ["language model", "diffusion", "distillation", "reasoning"]


# -- building real inputs -------------------------------------------------------------------


def api_papers(name: str) -> list[Paper]:
    """Papers from a real API sample, built field by field (independent of the source parsers)."""
    papers = []
    for entry in json.loads((SAMPLES / name).read_text(encoding="utf-8")):
        raw = entry["paper"]
        authors = [a["name"] for a in raw.get("authors", []) if not a.get("hidden")]
        org = raw.get("organization") or entry.get("organization") or {}
        papers.append(
            Paper(
                arxiv_id=raw["id"],
                title=raw["title"],
                abstract=raw.get("summary", ""),
                authors=authors,
                author_count=len(raw.get("authors", [])),
                organization=org.get("fullname") if isinstance(org, dict) else None,
                published=raw["publishedAt"][:10],
                upvotes=raw.get("upvotes"),
                ai_summary=raw.get("ai_summary"),
                ai_keywords=raw.get("ai_keywords") or [],
                github_repo=raw.get("githubRepo"),
                project_page=raw.get("projectPage"),
            )
        )
    return papers


def match(paper: Paper, terms: Iterable[str]) -> Match | None:
    """A Match with spans for every whole-word occurrence of ``terms`` (found in the real text)."""
    spans: list[Span] = []
    found: list[str] = []
    in_title = False
    for term in terms:
        pattern = re.compile(rf"\b{re.escape(term)}", re.IGNORECASE)
        for field in ("title", "abstract", "ai_summary"):
            for hit in pattern.finditer(getattr(paper, field) or ""):
                spans.append(Span(field=field, start=hit.start(), end=hit.end()))
                in_title = in_title or field == "title"
                if term not in found:
                    found.append(term)
    if not found:
        return None
    return Match(paper=paper, keywords=tuple(found), in_title=in_title, spans=tuple(spans))


def matches(papers: Sequence[Paper], terms: Iterable[str] = KEYWORDS) -> list[Match]:
    terms = list(terms)
    return [m for m in (match(p, terms) for p in papers) if m is not None]


def config(
    tmp_path: Path | None = None, *, templates: str | None = None, **digest: Any
) -> RenderSettings:
    """The render settings of a config with these ``[digest]`` keys (templates relative to
    ``tmp_path``, as a config file there would have them)."""
    return RenderSettings(
        title="Daily Papers digest",
        templates=(tmp_path / templates) if tmp_path and templates else None,
        unsubscribe_url="https://digest.example.org/leave?email={email}",
        manage_url="https://digest.example.org/manage?email={email}",
        **digest,
    )


def subscriber(**fields: Any) -> Subscriber:
    return subscriber_from(fields)


ADA = subscriber(
    email="ada@example.org",
    name="Ada Lovelace",
    keywords=KEYWORDS,
    exclude=["quantum"],
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(config())


@pytest.fixture(scope="module")
def golden_matches() -> list[Match]:
    older = matches(api_papers("api_2024-03-21.json"))[:3]
    newer = matches(api_papers("api_2025-10-06.json"))[:3]
    return [*older, *newer]


class Elements(HTMLParser):
    """Every start tag as (tag, attributes) plus the text inside each <a> and <mark>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.open: list[str] = []
        self.marks_in_links = 0
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag == "mark" and "a" in self.open:
            self.marks_in_links += 1
        if tag not in {"meta", "br", "img", "link"}:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if name in a.get("class", "").split()]

    def hrefs(self) -> list[str]:
        return [a["href"] for t, a in self.tags if t == "a" and "href" in a]


# -- golden files ----------------------------------------------------------------------------


def test_golden_html_and_text(renderer: Renderer, golden_matches: list[Match]) -> None:
    rendered = renderer.render(
        ADA, golden_matches, day=DAY, new_count=34, matched_count=len(golden_matches)
    )
    paths = {"html": GOLDEN / "digest.html", "txt": GOLDEN / "digest.txt"}
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        paths["html"].write_text(rendered.html, encoding="utf-8")
        paths["txt"].write_text(rendered.text, encoding="utf-8")
    assert rendered.html == paths["html"].read_text(encoding="utf-8")
    assert rendered.text == paths["txt"].read_text(encoding="utf-8")
    assert rendered.subject == "Daily Papers digest — Mon 06 Oct 2025: 6 new papers"
    assert rendered.paper_keys == tuple(m.paper.key for m in golden_matches)


# -- content -----------------------------------------------------------------------------------


def test_each_paper_shows_its_facts(renderer: Renderer, golden_matches: list[Match]) -> None:
    rendered = renderer.render(ADA, golden_matches, day=DAY, new_count=34, matched_count=9)
    page = Elements(rendered.html)
    text = " ".join(" ".join(page.text).split())
    plain = " ".join(rendered.text.split())
    hrefs = page.hrefs()
    for m in golden_matches:
        paper = m.paper
        assert paper.title in text
        assert f"https://huggingface.co/papers/{paper.arxiv_id}" in hrefs
        assert f"https://arxiv.org/pdf/{paper.arxiv_id}" in hrefs
        assert paper.authors[0] in text
        for keyword in m.keywords:
            assert keyword in text
        if paper.github_repo:
            assert paper.github_repo in hrefs
        if paper.project_page:
            assert paper.project_page in hrefs
        assert paper.title in plain
        assert paper.authors[0] in plain
    many = next(m.paper for m in golden_matches if len(m.paper.authors) > 3)
    assert f"+{len(many.authors) - 3}" in text
    assert "6 papers for you · 34 new today · 9 matched your interests" in text
    assert "ada@example.org" in text and "diffusion" in text and "quantum" in text
    assert "https://digest.example.org/leave?email=ada@example.org" in hrefs
    assert "https://digest.example.org/manage?email=ada@example.org" in hrefs


def test_highlights_are_marks_around_the_matched_terms(
    renderer: Renderer, golden_matches: list[Match]
) -> None:
    rendered = renderer.render(ADA, golden_matches, day=DAY, new_count=9, matched_count=9)
    marked = re.findall(r"<mark[^>]*>(.*?)</mark>", rendered.html)
    assert marked, "no highlights rendered"
    wanted = {k.casefold() for k in KEYWORDS}
    assert {m.casefold() for m in marked} <= wanted
    assert Elements(rendered.html).marks_in_links == 0
    assert "<mark" not in rendered.text


def test_highlight_escapes_each_segment_and_never_splits_markup() -> None:
    text = 'A <b>"diffusion"</b> & diffusion'
    spans = [
        Span(field="abstract", start=m.start(), end=m.end()) for m in re.finditer("diffusion", text)
    ]
    out = highlight(text, merge_spans(spans, "abstract", len(text)))
    assert str(out) == (
        "A &lt;b&gt;&#34;<mark>diffusion</mark>&#34;&lt;/b&gt; &amp; <mark>diffusion</mark>"
    )
    overlapping = [Span(field="abstract", start=2, end=9), Span(field="abstract", start=5, end=12)]
    assert merge_spans(overlapping, "abstract", 10) == [(2, 10)]
    assert merge_spans([Span(field="title", start=0, end=3)], "abstract", 10) == []


def test_shorten_keeps_whole_sentences_and_a_prefix() -> None:
    text = "We study X. It works well! Then e.g. this holds. Final one."
    assert shorten(text, 2, 1000) == ("We study X. It works well!", True, False)
    assert shorten(text, 9, 1000) == (text, False, False)
    cut = shorten("word " * 100, 3, 50)
    assert cut.ellipsis and len(cut.text) <= 50 and ("word " * 100).startswith(cut.text)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://huggingface.co/papers/2510.00515", True),
        ("http://example.org/a?b=1&c=2", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example/x", False),
        ("/papers/1", False),
        ("https://user:pw@example.org/", False),
        ("https://exa mple.org/", False),
        ("https://example.org/\u202e", False),
        ("https:\\\\example.org", False),
        ("https://", False),
        ("", False),
        (None, False),
    ],
)
def test_only_http_urls_become_links(url: str | None, safe: bool) -> None:
    assert (safe_url(url) is not None) is safe


def test_untrusted_text_renders_as_harmless_text(renderer: Renderer) -> None:
    evil = Paper(
        title="<script>alert(1)</script> diffusion",
        abstract='Fine. <img src=x onerror="alert(2)"> diffusion models.',
        authors=["<b>Mallory</b>", "Eve\x1b[31m"],
        organization="<iframe src='https://evil.example'>",
        ai_summary=None,
        url="javascript:alert(1)",
        github_repo="javascript:alert(3)",
        project_page="data:text/html,hi",
    )
    mallory = subscriber(
        email="mal@example.org", name="<img src=x onerror=alert(4)>", keywords=["diffusion"]
    )
    found = match(evil, ["diffusion"])
    assert found is not None
    rendered = renderer.render(mallory, [found], day=DAY, new_count=1, matched_count=1)
    page = Elements(rendered.html)
    assert [t for t, _ in page.tags if t in {"script", "iframe", "img"}] == []
    assert not any("onerror" in attrs for _, attrs in page.tags)
    assert all(h.startswith("https://") for h in page.hrefs())
    assert "javascript:" not in " ".join(page.hrefs())
    visible = " ".join(page.text)
    assert "<script>alert(1)</script>" in visible
    assert "<img src=x onerror=alert(4)>" in visible
    assert "javascript:alert(3)" in visible  # shown, as text
    assert "&lt;script&gt;" in rendered.html
    assert "\x1b" not in rendered.html and "\x1b" not in rendered.text
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_subject_is_one_english_line_whatever_the_count(renderer: Renderer) -> None:
    one = matches(api_papers("api_2025-10-06.json"))[:1]
    rendered = renderer.render(ADA, one, day=dt.date(2024, 2, 29), new_count=5, matched_count=1)
    assert rendered.subject == "Daily Papers digest — Thu 29 Feb 2024: 1 new paper"
    assert english_date(dt.date(2024, 2, 29)) == "Thursday 29 February 2024"


def test_empty_digest_is_a_short_note(renderer: Renderer) -> None:
    rendered = renderer.render(ADA, [], day=DAY, new_count=12, matched_count=0)
    assert rendered.subject == "Daily Papers digest — Mon 06 Oct 2025: no new papers"
    assert "No new papers matched your interests today." in rendered.html
    assert "No new papers matched your interests today." in rendered.text
    assert rendered.paper_keys == ()
    assert len(rendered.html) < 20_000


def test_text_part_is_wrapped_for_a_terminal(
    renderer: Renderer, golden_matches: list[Match]
) -> None:
    rendered = renderer.render(ADA, golden_matches, day=DAY, new_count=9, matched_count=9)
    for line in rendered.text.splitlines():
        assert len(line) <= 78 or re.fullmatch(r"\s*(\S+: )?https?://\S+", line), line
    assert not re.search(r"<[a-z/][^>]*>", rendered.text)
    assert "Unsubscribe: https://digest.example.org/leave?email=ada@example.org" in rendered.text


# -- CSS inlining ------------------------------------------------------------------------------


def test_styles_are_inlined_and_media_rules_kept(
    renderer: Renderer, golden_matches: list[Match]
) -> None:
    rendered = renderer.render(ADA, golden_matches, day=DAY, new_count=9, matched_count=9)
    page = Elements(rendered.html)
    for name in ("card", "card-body", "paper-link", "meta", "kw", "abstract", "title", "footer"):
        elements = page.with_class(name)
        assert elements, name
        assert all("style" in attrs and ":" in attrs["style"] for attrs in elements), name
    marks = [a for t, a in page.tags if t == "mark"]
    assert marks and all("background-color" in a.get("style", "") for a in marks)
    body = next(a for t, a in page.tags if t == "body")
    assert "background-color" in body["style"]
    style = re.search(r"<style>(.*?)</style>", rendered.html, re.S)
    assert style is not None
    assert "prefers-color-scheme: dark" in style.group(1)
    assert "max-width: 480px" in style.group(1)
    assert '<meta name="color-scheme" content="light dark">' in rendered.html
    assert not re.search(r"display:\s*(flex|grid)", rendered.html)


def test_skeleton_cache_gives_what_premailer_gives(
    renderer: Renderer, golden_matches: list[Match]
) -> None:
    html = renderer.render(ADA, golden_matches, day=DAY, new_count=9, matched_count=9).html
    # Inline an already inlined document again both ways: same tags, classes and styles.
    cached = Elements(Inliner("").document(html))
    direct = Elements(premailer_transform(html))
    shape = [(t, a.get("class"), a.get("style"), a.get("href")) for t, a in cached.tags]
    assert shape == [(t, a.get("class"), a.get("style"), a.get("href")) for t, a in direct.tags]
    assert " ".join("".join(cached.text).split()) == " ".join("".join(direct.text).split())


def test_skeleton_replaces_text_and_content_attributes_only() -> None:
    shape, values = skeleton(
        '<p class="x" title="t">Hi &amp; <a href="https://e.org/?a=1&amp;b">go</a></p>'
    )
    assert shape == '<p class="x" title="DGPH0HPGD">DGPH1HPGD<a href="DGPH2HPGD">DGPH3HPGD</a></p>'
    assert values == ["t", "Hi &amp; ", "https://e.org/?a=1&amp;b", "go"]


def test_values_go_back_into_their_places_and_a_lost_placeholder_is_noticed() -> None:
    html = '<p class="x" title="t">Hi &amp; <a href="https://e.org/">go</a></p>'
    shape, values = skeleton(html)
    inlined = shape.replace('<p class="x"', '<p class="x" style="margin:0"')
    pieces = slots(inlined, len(values))
    assert pieces is not None
    assert pour(pieces, values) == html.replace('class="x"', 'class="x" style="margin:0"')
    assert slots(inlined.replace("DGPH1HPGD", ""), len(values)) is None  # lost
    assert slots(inlined + "DGPH0HPGD", len(values)) is None  # doubled


def test_skeleton_keeps_style_and_script_elements_whole() -> None:
    css = "p { color: red } /* </styles> is not the end, nor <b> */ a { color: blue }"
    html = f"<STYLE type=x>{css}</Style ><p>text</p><script>if (a < b) {{}}</script>tail"
    shape, values = skeleton(html)
    assert shape == (
        f"<STYLE type=x>{css}</Style ><p>DGPH0HPGD</p><script>if (a < b) {{}}</script>DGPH1HPGD"
    )
    assert values == ["text", "tail"]


def premailer_body(css: str, html: str) -> str:
    """``html`` inlined by one whole premailer pass with ``css``: the body's content."""
    whole = premailer_transform(
        f"<html><head><style>{css}</style></head><body>{html}</body></html>"
    )
    found = re.search(r"<body>(.*)</body>", whole, re.S)
    assert found is not None
    return found.group(1).strip("\n")


def test_highlights_stay_in_their_text_run_and_take_the_inlined_mark() -> None:
    css = "p { margin: 0 } mark { background-color: #fde68a }"
    inliner = Inliner(css)
    cards = [
        "<p>a <mark>reward</mark> model</p>",
        "<p><mark>Reward</mark> models and <mark>RL</mark></p>",
    ]
    assert [inliner.fragment(card) for card in cards] == [premailer_body(css, c) for c in cards]
    assert inliner.shapes_inlined == 1  # the highlights moved, the shape did not
    assert inliner.premailer_runs == 0
    assert skeleton("<p>a <mark>b</mark></p>", fold=False)[1] == ["a ", "b"]
    # only bare highlights, opened and closed, join the run: a styled one is markup
    assert skeleton('<p>a <mark class="x">b</mark> <mark>c</mark></p>')[1] == ["a ", "b", "c"]
    assert skeleton("<p>a <mark>b</mark> c</mark></p>") == (
        "<p>DGPH0HPGD</mark></p>",
        ["a <mark>b</mark> c"],
    )


def test_a_mark_styled_by_where_it_sits_makes_highlights_shapes_again() -> None:
    css = "p mark { background-color: #fde68a } .card mark { color: red }"
    inliner = Inliner(css)
    cards = [
        '<div class="card"><p>a <mark>reward</mark> model</p></div>',
        '<div class="card"><p><mark>b</mark> c</p></div>',
        "<p>a <mark>b</mark></p>",
    ]
    assert [inliner.fragment(card) for card in cards] == [premailer_body(css, c) for c in cards]
    assert inliner.premailer_runs == inliner.shapes_inlined == 3  # a shape per highlight


def test_inlining_is_paid_per_distinct_shape_not_per_subscriber() -> None:
    renderer = Renderer(config())
    papers = api_papers("api_2025-10-06.json") + api_papers("api_2024-03-21.json")
    subscribers = [
        subscriber(email=f"user{n}@example.org", name=f"User {n}", keywords=terms)
        for n, terms in enumerate(
            [KEYWORDS[: 1 + n % 4] for n in range(30)] + [KEYWORDS[n % 4 :] for n in range(30)]
        )
    ]
    cards = 0
    for sub in subscribers:
        found = matches(papers, sub.keywords)
        cards += len(found)
        renderer.render(sub, found, day=DAY, new_count=len(papers), matched_count=len(found))
    assert cards > 500
    # 60 emails, >500 cards: far fewer shapes inlined than emails, let alone cards; the bundled
    # stylesheet is resolved once, so premailer itself never runs whole.
    assert renderer.inliner.shapes_inlined < 60
    assert renderer.inliner.premailer_runs == 0


# -- size budget -------------------------------------------------------------------------------


def test_size_budget_shortens_then_lists_the_overflow() -> None:
    renderer = Renderer(config())
    real = api_papers("api_2026-07-31_limit30.json") + api_papers("api_2024-03-21.json")
    long_papers = [
        Paper(
            arxiv_id=f"2601.{n:05d}",
            title=f"{real[n % len(real)].title} (part {n})",
            abstract=" ".join([real[n % len(real)].abstract] * 3),
            authors=real[n % len(real)].authors,
            published=dt.date(2026, 1, 5),
            upvotes=n,
            github_repo=f"https://github.com/example/repo{n}",
        )
        for n in range(200)
    ]
    found = [Match(paper=p, keywords=("models",)) for p in long_papers]
    sub = subscriber(email="ada@example.org", keywords=["models"], max_papers=500)
    rendered = renderer.render(sub, found, day=DAY, new_count=200, matched_count=200)
    size = len(rendered.html.encode("utf-8"))
    assert size <= 100_000
    page = Elements(rendered.html)
    full = page.with_class("card-body")
    listed = page.with_class("overflow-item")
    assert 0 < len(full) < 200
    assert len(full) + len(listed) == len(rendered.paper_keys)
    assert f"{200 - len(full)} more papers" in " ".join(page.text)
    assert "Unsubscribe" in " ".join(page.text)  # the footer survived
    first_body = re.search(r'class="abstract"[^>]*>(.*?)</p>', rendered.html, re.S)
    assert first_body is not None
    assert len(re.sub(r"<[^>]+>", "", first_body.group(1))) < 400  # shortened
    assert rendered.subject.endswith(f"{len(rendered.paper_keys)} new papers")
    assert f"{200 - len(full)} more papers:" in rendered.text


def test_small_digest_is_not_shortened(renderer: Renderer, golden_matches: list[Match]) -> None:
    rendered = renderer.render(ADA, golden_matches, day=DAY, new_count=9, matched_count=6)
    assert "overflow-item" not in rendered.html and "more papers" not in rendered.html
    first = golden_matches[0].paper.abstract
    assert shorten(first, 3, 600).text in " ".join("".join(Elements(rendered.html).text).split())


# -- templates ---------------------------------------------------------------------------------


def test_operator_templates_override_bundled_ones_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "mytemplates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text("Custom {{ title }}: {{ papers|length }} papers\n")
    renderer = Renderer(config(tmp_path, templates="mytemplates"))
    found = matches(api_papers("api_2025-10-06.json"))[:2]
    rendered = renderer.render(ADA, found, day=DAY, new_count=2, matched_count=2)
    assert rendered.text == "Custom Daily Papers digest: 2 papers\n"
    assert found[0].paper.title in rendered.html  # the HTML still comes from the bundled files


def test_missing_templates_folder_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError) as caught:
        Renderer(config(tmp_path, templates="nowhere"))
    assert caught.value.where == str(tmp_path / "nowhere")
    assert caught.value.hint


def test_broken_template_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "paper.html.j2").write_text("<p>\n{% if paper.title %}\n</p>\n")
    with pytest.raises(RenderError) as caught:
        Renderer(config(tmp_path, templates="t"))
    assert caught.value.where is not None and caught.value.where.endswith("paper.html.j2:3")


def test_undefined_variable_is_a_render_error(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "digest.txt.j2").write_text("{{ no_such_thing }}\n")
    renderer = Renderer(config(tmp_path, templates="t"))
    with pytest.raises(RenderError) as caught:
        renderer.render(ADA, [], day=DAY, new_count=0, matched_count=0)
    assert caught.value.where == str(tmp_path / "t" / "digest.txt.j2") + ":1"
    assert "no_such_thing" in str(caught.value)


# -- previews ----------------------------------------------------------------------------------


def test_write_preview_writes_each_email_and_an_index(
    tmp_path: Path, renderer: Renderer, golden_matches: list[Match]
) -> None:
    bob = subscriber(email="Bob.Smith@example.org", name="Bob")
    bob2 = subscriber(email="bob-smith@example.org", name="Bob two")
    items = [
        (ADA, renderer.render(ADA, golden_matches, day=DAY, new_count=9, matched_count=9)),
        (bob, renderer.render(bob, [], day=DAY, new_count=9, matched_count=0)),
        (bob2, renderer.render(bob2, [], day=DAY, new_count=9, matched_count=0)),
    ]
    out = tmp_path / "preview" / "nested"
    paths = write_preview(out, items)
    names = [p.name for p in paths]
    assert names == [
        "index.html",
        "ada-example-org.html",
        "ada-example-org.txt",
        "bob-smith-example-org.html",
        "bob-smith-example-org.txt",
        "bob-smith-example-org-2.html",
        "bob-smith-example-org-2.txt",
    ]
    # no temp files left; the manifest lets the next preview remove what it no longer writes
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, ".digest-preview"])
    assert paths[1].read_text(encoding="utf-8") == items[0][1].html
    assert paths[2].read_text(encoding="utf-8") == items[0][1].text
    index = Elements(paths[0].read_text(encoding="utf-8"))
    assert index.hrefs() == [n for n in names[1:]]
    assert items[0][1].subject in " ".join(index.text)


def test_clean_text_removes_terminal_escapes_and_bidi_overrides() -> None:
    assert clean_text("a\x1b[31mb\u202ec\n d\x00") == "a [31mb c d"


def test_tight_budget_leaves_the_rest_for_the_next_digest() -> None:
    renderer = Renderer(config(max_html_bytes=10_000))
    real = api_papers("api_2024-03-21.json")
    found = [
        Match(
            paper=Paper(arxiv_id=f"2602.{n:05d}", title=f"{real[n % len(real)].title} {n}"),
            keywords=("models",),
        )
        for n in range(300)
    ]
    sub = subscriber(email="ada@example.org", keywords=["models"], max_papers=500)
    rendered = renderer.render(sub, found, day=DAY, new_count=300, matched_count=300)
    assert len(rendered.html.encode("utf-8")) <= 10_000
    listed = len(rendered.paper_keys)
    assert 0 < listed < 300
    assert rendered.paper_keys == tuple(m.paper.key for m in found[:listed])
    assert f"…and {300 - listed} more in tomorrow's digest." in rendered.html
    assert f"…and {300 - listed} more in tomorrow's digest." in rendered.text
    assert "Unsubscribe" in rendered.html


# -- the footer tells the truth ------------------------------------------------------------------


def _footer(settings: RenderSettings) -> tuple[str, str]:
    rendered = Renderer(settings).render(
        ADA, matches(api_papers("api_2025-10-06.json"))[:2], day=DAY, new_count=2, matched_count=2
    )
    html_footer = rendered.html[rendered.html.index('class="footer"') :]
    return html_footer, rendered.text.split("\n-- \n")[1]


def test_a_footer_names_no_way_that_this_configuration_lacks() -> None:
    html_part, text = _footer(RenderSettings(title="Daily Papers digest"))
    for part in (html_part, text):
        assert "nsubscribe" not in part and "reply" not in part.lower()
        assert "change your interests" not in part.lower()
    assert "ada@example.org subscribed to" in " ".join(text.split())


def test_a_footer_offers_what_is_configured() -> None:
    links = UnsubscribeLinks("https://digest.example.org", b"0123456789abcdef0123")
    html_part, text = _footer(
        RenderSettings(title="Daily Papers digest", links=links, contact="papers@example.org")
    )
    url, page = links.url_for("ada@example.org"), links.preferences_url("ada@example.org")
    assert f'href="{url}"' in html_part and f"Unsubscribe: {url}" in text
    assert f'href="{page}"' in html_part and f"Change your interests: {page}" in text
    assert "write to papers@example.org" not in text  # the page does it
    html_part, text = _footer(
        RenderSettings(
            title="Daily Papers digest", links=links, contact="papers@example.org",
            self_service=False,
        )
    )  # fmt: skip
    assert 'href="mailto:papers@example.org"' in html_part and page not in html_part
    assert "To change your interests, write to papers@example.org." in text
    mailto_only = RenderSettings(
        title="Daily Papers digest", unsubscribe_mailto="mailto:leave@example.org"
    )
    html_part, text = _footer(mailto_only)
    assert (
        'href="mailto:leave@example.org"' in html_part and "Unsubscribe: leave@example.org" in text
    )


def test_a_weekly_digest_is_headed_by_its_week() -> None:
    weekly = subscriber(email="w@example.org", keywords=["model"], frequency="weekly")
    rendered = Renderer(config()).render(
        weekly,
        matches(api_papers("api_2025-10-06.json"))[:3],
        day=DAY,
        new_count=40,
        matched_count=3,
    )
    assert rendered.subject == "Daily Papers digest — Week 41 · 3 papers"
    assert "Week 41 (30 September \u2013 6 October 2025)" in rendered.text
    assert "40 new this week" in rendered.text
    assert "<h1" in rendered.html and "Week 41</h1>" in rendered.html


# -- a match by name explains itself ---------------------------------------------------------------


def _why_lines(reader: Subscriber) -> tuple[list[str], str]:
    from digest.match import compile_interests

    papers = api_papers("api_2025-10-06.json")
    found = list(compile_interests([reader]).rank_one(reader.email, papers).matches)
    assert found, reader
    rendered = Renderer(RenderSettings(title="T"), inline=False).render(
        reader, found, day=DAY, new_count=len(papers), matched_count=len(found)
    )
    html_lines = re.findall(r'<p class="why"[^>]*>([^<]*)</p>', rendered.html)
    return html_lines, " ".join(rendered.text.split())


def test_an_author_only_match_says_whose_paper_it_is() -> None:
    lines, text = _why_lines(subscriber(email="a@example.org", authors=["Xuzhou Zhu"]))
    assert lines == ["By Xuzhou Zhu, an author you follow"]
    assert "Why: By Xuzhou Zhu, an author you follow" in text
    assert "not shown here" not in text


def test_an_organisation_only_match_says_where_it_is_from() -> None:
    reader = subscriber(email="o@example.org", organizations=["Shanghai Jiao Tong University"])
    lines, text = _why_lines(reader)
    assert lines and all(
        line == "From Shanghai Jiao Tong University, an organisation you follow" for line in lines
    )
    assert "not shown here" not in text


def test_a_keyword_in_hidden_text_beside_an_author_still_says_so() -> None:
    paper = api_papers("api_2025-10-06.json")[3]
    both = Match(paper=paper, keywords=("Xuzhou Zhu", "survey writing"), by_authors=("Xuzhou Zhu",))
    reader = subscriber(email="b@example.org", authors=["Xuzhou Zhu"], keywords=["survey writing"])
    rendered = Renderer(RenderSettings(title="T"), inline=False).render(
        reader, [both], day=DAY, new_count=1, matched_count=1
    )
    (line,) = re.findall(r'<p class="why"[^>]*>([^<]*)</p>', rendered.html)
    assert line == (
        "By Xuzhou Zhu, an author you follow; "
        "matched in text not shown here (the full abstract or its AI keywords)"
    )


def test_each_reader_gets_verdict_links_of_their_own_on_shared_cards() -> None:
    links = UnsubscribeLinks("https://digest.example.org", b"0123456789abcdef0123")
    renderer = Renderer(RenderSettings(title="Daily Papers digest", links=links))
    found = matches(api_papers("api_2025-10-06.json"))[:3]
    bob = subscriber(email="bob@example.org", keywords=KEYWORDS)
    for reader in (ADA, bob, ADA):  # the same cards, rendered for one reader after another
        rendered = renderer.render(reader, found, day=DAY, new_count=3, matched_count=3)
        html, text = rendered.html, rendered.text
        assert "feedback.invalid" not in html and "feedback.invalid" not in text
        for match in found:
            for verdict, words in (("more", "More like this"), ("less", "Fewer like this")):
                url = links.feedback_url(reader.email, match.paper.key, verdict)
                assert f'href="{url}"' in html
                # the text part offers the same pages, the URL whole on its own line
                assert f"{words}: {url}\n" in text
        other = bob if reader is ADA else ADA
        assert links.feedback_base(other.email) not in html + text
    plain = Renderer(RenderSettings(title="Daily Papers digest")).render(
        ADA, found, day=DAY, new_count=3, matched_count=3
    )
    assert "More like this" not in plain.html  # no server, no links to it
    assert "More like this" not in plain.text


def test_a_paper_the_profile_added_says_which_marked_paper_it_is_like() -> None:
    paper = api_papers("api_2025-10-06.json")[0]
    added = Match(paper=paper, marked="FastCuRL: Curriculum <b>Reinforcement</b> Learning")
    rendered = Renderer(RenderSettings(title="T"), inline=False).render(
        ADA, [added], day=DAY, new_count=1, matched_count=1
    )
    (line,) = re.findall(r'<p class="why"[^>]*>([^<]*)</p>', rendered.html)
    marked = "FastCuRL: Curriculum &lt;b&gt;Reinforcement&lt;/b&gt; Learning"
    assert line == f"Like papers you marked: “{marked}”"
    assert "Why: Like papers you marked:" in " ".join(rendered.text.split())
