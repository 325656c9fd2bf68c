"""Feed sources: RSS 2.0 and Atom mirrors of Daily Papers, their scraping artefacts, hostile XML."""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from pathlib import Path

import httpx
import pytest

from digest.config import parse_config, source_from
from digest.errors import ParseError
from digest.identity import merge_papers
from digest.sources import ReadContext, read_sources
from digest.sources.feed import parse_feed
from digest.sources.fetch import get, make_client
from digest.sources.hf_api import parse_api
from digest.sources.local import read_regular_file

from .conftest import LocalServer, Reply

FIXTURES = Path(__file__).parent.parent / "fixtures"
RSS = FIXTURES / "sources" / "feed_rss.xml"
ATOM = FIXTURES / "sources" / "feed_atom.xml"
API = FIXTURES / "samples" / "hf" / "api_2025-10-06.json"


def api_entry(paper_id: str) -> dict[str, object]:
    entries: list[dict[str, dict[str, object]]] = json.loads(API.read_text(encoding="utf-8"))
    return next(e["paper"] for e in entries if e["paper"]["id"] == paper_id)


def test_rss_items_become_papers_with_ids_and_clean_text() -> None:
    papers = parse_feed(RSS.read_bytes(), origin="feed_rss.xml")
    assert [p.arxiv_id for p in papers] == [
        "2510.00515",
        "2510.01068",
        "2510.02665",
        "2510.03120",  # from an arXiv link with a version suffix
        None,  # no link at all: known by its title, like a saved text page
    ]
    first = papers[0]
    raw = api_entry("2510.00515")
    assert first.title == " ".join(str(raw["title"]).split())
    assert first.abstract == " ".join(str(raw["summary"]).split())
    assert first.ai_summary == raw["ai_summary"]
    assert first.authors[:2] == ("Zichen Wen", "Shaobo Wang")
    assert first.published == dt.date(2025, 10, 6)
    assert first.url == "https://huggingface.co/papers/2510.00515"
    for paper in papers:
        text = " ".join([paper.title, paper.abstract, paper.ai_summary or ""])
        assert "<" not in text and "Abstract" not in text and "AI-generated" not in text
        assert "arXiv | PDF" not in text and "本文" not in text  # link lines, the translation
    assert papers[4].abstract == "No link anywhere."


def test_atom_entries_read_the_same_way() -> None:
    rss = parse_feed(RSS.read_bytes(), origin="rss")
    atom = parse_feed(ATOM.read_bytes(), origin="atom")
    assert [p.arxiv_id for p in atom] == ["2510.00515", "2510.01068"]
    for from_atom, from_rss in zip(atom, rss, strict=False):
        assert (from_atom.title, from_atom.abstract, from_atom.ai_summary) == (
            from_rss.title,
            from_rss.abstract,
            from_rss.ai_summary,
        )


def test_feed_papers_merge_with_the_same_papers_from_the_api() -> None:
    from_api = parse_api(API.read_text(encoding="utf-8"), origin="api")
    from_feed = parse_feed(RSS.read_bytes(), origin="feed")
    merged = merge_papers([*from_api, *from_feed])
    assert len(merged) == len(from_api) + 1  # only the title-only item is new
    epic = next(p for p in merged if p.arxiv_id == "2510.00515")
    assert epic.sources == ("api", "feed")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>x</title>
<item><title>&lol9;</title><link>https://huggingface.co/papers/2601.01234</link></item>
</channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title>
<item><title>&secret;</title><link>https://huggingface.co/papers/2601.01234</link></item>
</channel></rss>"""


@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
def test_entity_declarations_are_refused_before_parsing(hostile: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(hostile, origin="evil.xml")
    assert caught.value.where == "evil.xml"
    assert "entities" in caught.value.message and caught.value.hint


def item(title: str, link: str, description: str = "<p>Abstract: text.</p>") -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item>'
        f"<title>{title}</title><link>{link}</link>"
        f"<description><![CDATA[{description}]]></description></item></channel></rss>"
    ).encode()


def test_a_javascript_link_never_becomes_the_papers_link() -> None:
    (paper,) = parse_feed(item("Fine title", "javascript:alert(1)"), origin="x")
    assert paper.url is None and paper.arxiv_id is None
    assert paper.hf_url is None  # nothing the email could turn into a link


def test_html_in_titles_and_summaries_is_reduced_to_text() -> None:
    hostile = item(
        "A &lt;b&gt;bold&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;title",
        "https://huggingface.co/papers/2601.01234",
        '<p>Abstract</p><p>We <img src=x onerror="alert(2)">do <script>alert(3)</script>'
        "things.</p>",
    )
    (paper,) = parse_feed(hostile, origin="x")
    assert paper.arxiv_id == "2601.01234"
    assert paper.title == "A bold title"
    assert paper.abstract == "We do things."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html><body>not a feed</body></html>", "not an RSS or Atom feed"),
        (b"", "not an RSS or Atom feed"),
        (item("", "https://huggingface.co/papers/2601.01234"), "no item of the feed is a paper"),
    ],
)
def test_what_is_not_a_feed_of_papers_is_a_clear_error(data: bytes, message: str) -> None:
    skipped: list[ParseError] = []
    with pytest.raises(ParseError, match=message) as caught:
        parse_feed(data, origin="bad.xml", on_skip=skipped.append)
    assert caught.value.where == "bad.xml"


def test_an_item_without_a_title_is_skipped_alone() -> None:
    untitled = RSS.read_bytes().replace(
        b"<title>A paper known only by its title</title>", b"<title></title>"
    )
    skipped: list[ParseError] = []
    papers = parse_feed(untitled, origin="x", on_skip=skipped.append)
    assert len(papers) == 4 and len(skipped) == 1
    assert "item [4]" in (skipped[0].where or "") and "no title" in skipped[0].message
    with pytest.raises(ParseError, match="no title"):
        parse_feed(untitled, origin="x")  # without on_skip the whole feed fails


def test_a_feed_source_from_a_local_server_and_from_a_file(server: LocalServer) -> None:
    server.script.replies["/feed.xml"] = [Reply(body=RSS.read_bytes())]
    config = parse_config(
        f'[[sources]]\nkind = "feed"\nurl = "{server.url}/feed.xml"\n'
        f'[[sources]]\nkind = "feed"\npath = "{ATOM}"\n',
        Path("/tmp/digest.toml"),
    )
    with make_client(timeout=2, connect_timeout=2) as client:
        context = ReadContext(
            today=dt.date(2025, 10, 6),
            download=partial(get, client, retries=0, backoff=0),
            read_file=partial(read_regular_file, max_bytes=10_000_000),
            resolve=Path,
        )
        batch = read_sources(config.sources, context)  # type: ignore[arg-type]
    assert batch.failures == ()
    assert batch.entries == 5 + 2 and len(batch.papers) == 5


def test_a_feed_url_must_be_http() -> None:
    with pytest.raises(Exception, match="http"):
        source_from({"kind": "feed", "url": "file:///etc/passwd"})
    assert isinstance(make_client(), httpx.Client)
