"""BibTeX for the papers of a digest: a link per paper, or one ``.bib`` file attached to the email.

The entries follow arXiv's own export (``@misc`` with ``eprint``, ``archivePrefix = {arXiv}``
and ``url``), which BibTeX, BibLaTeX (it reads ``eprint`` + ``archivePrefix`` as an arXiv
reference), Zotero and JabRef all import. Source text is untrusted: characters that mean something
to TeX are escaped, braces included, so a title can never close its field or open another entry;
control characters are dropped. Non-ASCII letters stay as UTF-8, which biber, Zotero and JabRef
read (the file says ``charset=utf-8``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal

from digest.models import Attachment, Paper
from digest.untrusted import clean_text

BibtexMode = Literal["link", "attach", "off"]
ARXIV_BIBTEX = "https://arxiv.org/bibtex/"
MEDIA_TYPE = "text/x-bibtex"

_TEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "_": r"\_",
    "$": r"\$",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_SPECIAL = re.compile("|".join(re.escape(c) for c in _TEX))
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset({"a", "an", "the", "on", "of", "for", "in", "to", "and", "with", "via"})


def bibtex_link(paper: Paper) -> str | None:
    """arXiv's BibTeX page for ``paper``, when its arXiv id is known."""
    return f"{ARXIV_BIBTEX}{paper.arxiv_id}" if paper.arxiv_id else None


def escape(text: str) -> str:
    """``text`` as the inside of a braced BibTeX field: one line, TeX's specials escaped."""
    return _SPECIAL.sub(lambda m: _TEX[m.group()], " ".join(clean_text(text).split()))


def year_of(paper: Paper) -> int | None:
    """The year of an arXiv id (``2510.00515``: 2025), else of the publication date."""
    if paper.arxiv_id and re.fullmatch(r"\d{4}\.\d{4,5}", paper.arxiv_id):
        return 2000 + int(paper.arxiv_id[:2])
    return paper.published.year if paper.published else None


def entry(paper: Paper, key: str) -> str:
    """One ``@misc`` entry for ``paper`` under the citation key ``key``."""
    fields = [("title", escape(paper.title))]
    names = [escape(name) for name in paper.authors if clean_text(name).strip()]
    if names:
        # a name holding the word "and" (an organisation) would split: braces keep it whole
        fields.append(("author", " and ".join(_whole(name) for name in names)))
    year = year_of(paper)
    if year is not None:
        fields.append(("year", str(year)))
    if paper.arxiv_id:
        fields += [("eprint", paper.arxiv_id), ("archivePrefix", "arXiv")]
    url = paper.arxiv_url or paper.hf_url
    if url:
        fields.append(("url", escape(url)))
    if paper.abstract:
        fields.append(("abstract", escape(paper.abstract)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}\n"


def _whole(name: str) -> str:
    return f"{{{name}}}" if re.search(r"\band\b|,", name, re.IGNORECASE) else name


def citation_key(paper: Paper) -> str:
    """``zhang2025efficient``: the first author's last name, the year, the title's first word
    that says something (ASCII letters and digits only, as every BibTeX tool accepts)."""
    last = _ascii_words(paper.authors[0].split()[-1]) if paper.authors else []
    words = [w for w in _ascii_words(paper.title) if w not in _STOP_WORDS]
    year = year_of(paper)
    key = "".join(last[:1]) + (str(year) if year else "") + "".join(words[:1])
    return key or "paper"


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _ASCII_WORD.findall(folded)


def bibliography(papers: Iterable[Paper]) -> str:
    """Every paper's entry, each under its own key (``a``, ``b``, ... added where two agree)."""
    used: set[str] = set()
    entries = []
    for paper in papers:
        base = key = citation_key(paper)
        suffix = 0
        while key in used:
            suffix += 1
            key = f"{base}{_letters(suffix)}"
        used.add(key)
        entries.append(entry(paper, key))
    return "\n".join(entries)


def _letters(n: int) -> str:
    out = ""
    while n:
        n, rest = divmod(n - 1, 26)
        out = chr(ord("a") + rest) + out
    return out


def attachment(papers: Sequence[Paper], *, name: str) -> Attachment:
    """The ``.bib`` file of a digest's papers, to attach to its email as ``name``."""
    return Attachment(filename=name, content_type=MEDIA_TYPE, text=bibliography(papers))
