"""BibTeX: every paper of the real API samples reads back through a BibTeX parser with its title,
authors, year, arXiv id and URL; hostile titles stay inside their field; and through a run, the
attached ``.bib``, the "BibTeX" link and ``bibtex = "off"`` per reader."""

from __future__ import annotations

import datetime as dt
import email
import shutil
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import bibtexparser.model
import pytest
from bibtexparser.entrypoint import parse_string

from digest import Digest
from digest.config import load_config
from digest.models import Paper
from digest.render.bibtex import bibliography, citation_key, escape
from tests.render.test_render import SAMPLES, api_papers

API_DAYS = sorted(p.name for p in SAMPLES.glob("api_*.json"))


def unescaped(value: str) -> str:
    """A field as TeX would print it (the escapes this module writes, undone)."""
    for tex, plain in (
        (r"\textbackslash{}", "\\"), (r"\textasciitilde{}", "~"), (r"\textasciicircum{}", "^"),
        (r"\{", "{"), (r"\}", "}"), (r"\%", "%"), (r"\&", "&"), (r"\#", "#"), (r"\_", "_"),
        (r"\$", "$"),
    ):  # fmt: skip
        value = value.replace(tex, plain)
    return value


def parsed(text: str) -> list[bibtexparser.model.Entry]:
    library = parse_string(text)
    assert library.failed_blocks == []
    return list(library.entries)


@pytest.mark.parametrize("day", API_DAYS)
def test_every_paper_of_a_real_day_reads_back_whole(day: str) -> None:
    papers = api_papers(day)
    entries = parsed(bibliography(papers))
    assert len(entries) == len(papers)
    assert len({e.key for e in entries}) == len(entries)
    for paper, found in zip(papers, entries, strict=True):
        fields = found.fields_dict
        assert found.entry_type == "misc"
        assert unescaped(fields["title"].value) == paper.title
        names = fields["author"].value.split(" and ") if paper.authors else []
        assert [unescaped(n).strip("{}") for n in names] == list(paper.authors)
        assert fields["year"].value == f"20{paper.arxiv_id[:2]}"  # type: ignore[index]
        assert fields["eprint"].value == paper.arxiv_id
        assert fields["archivePrefix"].value == "arXiv"
        assert fields["url"].value == f"https://arxiv.org/abs/{paper.arxiv_id}"


@pytest.mark.parametrize(
    "title",
    [
        "Breaking out}, author = {Mallory}, note = {x",
        "} @misc{evil, title = {owned",
        "Unbalanced {{{ braces",
        r"Backslash \end{document} and 100% of $math$ & #tags_ ~^",
        "Control\x1b[31m characters\x00 go",
    ],
)
def test_a_hostile_title_stays_one_field_of_one_entry(title: str) -> None:
    paper = Paper(arxiv_id="2510.00001", title=title, authors=("Ada Lovelace",))
    (entry,) = parsed(bibliography([paper]))
    assert set(entry.fields_dict) == {"title", "author", "year", "eprint", "archivePrefix", "url"}
    assert entry.fields_dict["author"].value == "Ada Lovelace"
    assert unescaped(entry.fields_dict["title"].value) == " ".join(
        title.replace("\x1b", " ").replace("\x00", " ").split()
    )


def test_keys_read_like_a_citation_and_two_alike_get_letters() -> None:
    paper = Paper(arxiv_id="2510.00515", title="The Efficient Models", authors=("Zoë Ñúñez",))
    assert citation_key(paper) == "nunez2025efficient"
    twin = paper.model_copy(update={"arxiv_id": "2510.00516", "key": "2510.00516"})
    assert [e.key for e in parsed(bibliography([paper, twin, paper]))] == [
        "nunez2025efficient", "nunez2025efficienta", "nunez2025efficientb",
    ]  # fmt: skip
    assert citation_key(Paper(title="日本語")) == "paper"


def test_an_organisation_named_with_and_stays_one_author() -> None:
    paper = Paper(arxiv_id="2510.00001", title="T", authors=("Research and Development Lab", "B"))
    (entry,) = parsed(bibliography([paper]))
    assert entry.fields_dict["author"].value == "{Research and Development Lab} and B"
    assert escape("a}b") == r"a\}b"


# --- through a run --------------------------------------------------------------------------------

MORNING = dt.datetime(2025, 10, 6, 7, 0, tzinfo=dt.UTC)


def run_day(folder: Path, digest_section: str, subscribers: str) -> list[EmailMessage]:
    shutil.copy(SAMPLES / "api_2025-10-06.json", folder / "today.json")
    path = folder / "digest.toml"
    path.write_text(
        f"[digest]\n{digest_section}\n"
        '[[sources]]\nkind = "page"\npath = "today.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        + subscribers
    )
    report = Digest(load_config(path), clock=lambda: MORNING).run(day=MORNING.date())
    assert report.exit_code == 0
    messages = {}
    for eml in (folder / "outbox").glob("*.eml"):
        message = email.message_from_bytes(eml.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        messages[str(message["To"])] = message
    return [messages[key] for key in sorted(messages)]


def test_attach_sends_a_bib_of_every_paper_in_the_email(tmp_path: Path) -> None:
    ada, bob = run_day(
        tmp_path,
        'bibtex = "attach"',
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\n'
        '[[subscribers]]\nemail = "bob@example.org"\nkeywords = ["agent"]\nbibtex = "off"\n',
    )
    (bib,) = list(ada.iter_attachments())
    assert bib.get_filename() == "papers-2025-10-06.bib"
    entries = parsed(str(bib.get_content()))
    html_part = ada.get_body(("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    ids = {e.fields_dict["eprint"].value for e in entries}
    assert len(ids) == 7  # every paper of the digest, each once
    for arxiv_id in ids:
        assert f"https://huggingface.co/papers/{arxiv_id}" in html
        assert f'href="https://arxiv.org/bibtex/{arxiv_id}"' in html
    for entry in entries:
        assert {"title", "author", "year", "eprint", "url"} <= set(entry.fields_dict)
    # bob's own setting wins over [digest]: no attachment, no link
    assert list(bob.iter_attachments()) == []
    assert bob.get_content_type() == "multipart/alternative"
    bob_html = bob.get_body(("html",))
    assert bob_html is not None and "arxiv.org/bibtex" not in str(bob_html.get_content())


def test_the_default_is_a_bibtex_link_in_html_and_text(tmp_path: Path) -> None:
    (ada,) = run_day(
        tmp_path, "", '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\n'
    )
    assert list(ada.iter_attachments()) == []
    text_part = ada.get_body(("plain",))
    assert text_part is not None
    assert "BibTeX: https://arxiv.org/bibtex/2510.03204" in str(text_part.get_content())
