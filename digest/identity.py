"""The one place that decides whether two records are the same paper, and how they merge.

Two records are the same paper when their versionless arXiv ids are equal, or, when at least one
of them has no id (saved text pages never carry one), when their normalised titles
(:func:`title_key`: case, punctuation, whitespace and unicode forms folded) are equal. Two
different arXiv ids are two papers even under one title. A paper's canonical key is its arXiv id,
else a short hash of its title key.

:class:`Resolver` applies the rule to a stream of records against a :class:`Known` index of papers
already stored somewhere: batch de-duplication (:func:`merge_papers`) resolves against nothing,
every store resolves against its tables. Merging (:func:`merge_two`) keeps the richest value of
every field and every source.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from digest.models import Paper

_ARXIV_ID = re.compile(
    r"^(?:arxiv:)?(?P<id>\d{4}\.\d{4,5}|[a-z][a-z.\-]*/\d{7})(?:v\d+)?$", re.IGNORECASE
)
_NOT_WORD = re.compile(r"[\W_]+")


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace (hard wraps, tabs, NBSP) into single spaces and trim."""
    return " ".join(text.split())


def arxiv_id(raw: str | None) -> str | None:
    """The versionless arXiv id in ``raw`` (``2401.01234v2`` -> ``2401.01234``), or None."""
    if not raw:
        return None
    match = _ARXIV_ID.match(raw.strip())
    return match.group("id").lower() if match else None


def title_key(title: str) -> str:
    """A title reduced to what survives re-wrapping, re-casing, punctuation and unicode forms."""
    decomposed = unicodedata.normalize("NFKD", title)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", without_marks.casefold()).split())


def paper_key(arxiv: str | None, title: str) -> str:
    """The canonical key: the arXiv id when known, else a short hash of the title key."""
    if arxiv:
        return arxiv
    digest = hashlib.sha1(title_key(title).encode("utf-8")).hexdigest()[:16]
    return f"title:{digest}"


def conflicting(a: str | None, b: str | None) -> bool:
    """Whether two arXiv ids prove two records are different papers (both known, unequal)."""
    return bool(a and b and a != b)


class Known(Protocol):
    """Papers already recorded somewhere (a store), looked up the ways identity needs."""

    def has(self, key: str) -> bool:
        """Whether a paper is stored under canonical key ``key``."""

    def paper(self, key: str) -> Paper | None:
        """The stored record under ``key`` (None when unknown, or kept only as an identity)."""

    def key_of_arxiv(self, arxiv: str) -> str | None:
        """The key of the stored paper with this arXiv id."""

    def keys_of_title(self, title: str) -> Sequence[tuple[str, str | None]]:
        """(key, arXiv id) of stored papers ever seen under this title key, oldest first."""


class NothingKnown:
    """A :class:`Known` with nothing in it: what batch de-duplication resolves against."""

    def has(self, key: str) -> bool:
        return False

    def paper(self, key: str) -> Paper | None:
        return None

    def key_of_arxiv(self, arxiv: str) -> str | None:
        return None

    def keys_of_title(self, title: str) -> Sequence[tuple[str, str | None]]:
        return ()


@dataclass
class Resolved:
    """One distinct paper of a resolution: its merged record, whether it was known, its titles."""

    paper: Paper
    new: bool
    titles: set[str] = field(default_factory=set)


class Resolver:
    """Records resolved one by one to distinct papers, merged as they come.

    ``stable_keys``: a paper keeps the key it was first seen under (what a store needs, so its
    ledger never holds one paper under two keys); otherwise the key follows the merged record, so
    a title-only record that gains an arXiv id is keyed by the id (what a batch wants).
    """

    def __init__(self, known: Known | None = None, *, stable_keys: bool = False) -> None:
        self._known = known or NothingKnown()
        self._stable = stable_keys
        self._entries: dict[str, Resolved] = {}
        self._by_arxiv: dict[str, str] = {}
        self._by_title: dict[str, list[str]] = {}

    def add(self, paper: Paper) -> Resolved:
        """Resolve ``paper``: merged into the entry of the same paper, or a new entry."""
        key = self._find(paper)
        entry = self._entries.get(key) if key is not None else None
        if key is None:
            entry = Resolved(paper, new=True)
        elif entry is not None:
            entry.paper = merge_two(entry.paper, paper, keep_key=self._stable or not entry.new)
        else:
            stored = self._known.paper(key)
            # A known paper whose record was pruned keeps its key and takes the new record.
            base = stored if stored is not None else paper.model_copy(update={"key": key})
            entry = Resolved(merge_two(base, paper, keep_key=True), new=False)
        if entry.new and not self._stable:
            wanted = paper_key(entry.paper.arxiv_id, entry.paper.title)
            if entry.paper.key != wanted:
                entry.paper = entry.paper.model_copy(update={"key": wanted})
        old_key = key
        key = entry.paper.key
        if old_key is not None and old_key != key:
            self._entries.pop(old_key, None)
            self._relabel(old_key, key)
        entry.titles.update((paper.title_key, entry.paper.title_key))
        self._entries[key] = entry
        if entry.paper.arxiv_id:
            self._by_arxiv.setdefault(entry.paper.arxiv_id, key)
        for title in entry.titles:
            keys = self._by_title.setdefault(title, [])
            if key not in keys:
                keys.append(key)
        return entry

    def entries(self) -> list[Resolved]:
        """The distinct papers, in order of first appearance."""
        return list(self._entries.values())

    def _find(self, paper: Paper) -> str | None:
        if paper.key in self._entries:
            return paper.key
        if self._known.has(paper.key):
            return paper.key
        if paper.arxiv_id:
            if paper.arxiv_id in self._by_arxiv:
                return self._by_arxiv[paper.arxiv_id]
            found = self._known.key_of_arxiv(paper.arxiv_id)
            if found is not None:
                return found
        candidates = list(self._known.keys_of_title(paper.title_key))
        candidates += [(k, None) for k in self._by_title.get(paper.title_key, [])]
        for key, arxiv in candidates:
            if key in self._entries:
                arxiv = self._entries[key].paper.arxiv_id
            if not conflicting(paper.arxiv_id, arxiv):
                return key
        return None

    def _relabel(self, old: str, new: str) -> None:
        for arxiv, key in self._by_arxiv.items():
            if key == old:
                self._by_arxiv[arxiv] = new
        for keys in self._by_title.values():
            if old in keys:
                keys[keys.index(old)] = new


def merge_papers(papers: Iterable[Paper]) -> list[Paper]:
    """One paper per distinct paper in ``papers``, in order of first appearance."""
    resolver = Resolver()
    for paper in papers:
        resolver.add(paper)
    return [entry.paper for entry in resolver.entries()]


def unique_by_key(papers: Iterable[Paper]) -> list[Paper]:
    """``papers`` without repeats of a canonical key (already resolved), first kept."""
    seen: set[str] = set()
    out: list[Paper] = []
    for paper in papers:
        if paper.key not in seen:
            seen.add(paper.key)
            out.append(paper)
    return out


def merge_two(a: Paper, b: Paper, *, keep_key: bool = False) -> Paper:
    """``a`` and ``b`` (the same paper) as one record with the richest fields of both.

    ``a`` wins ties (it was seen first), except that a record with an arXiv id always wins over
    one without: an id-less record (a saved page, a feed item) can name a real paper by its
    title, and must never put its own link, abstract or authors on it. The key is recomputed from
    the merged id and title, so a title-only record that gains an arXiv id gets the id as key;
    ``keep_key=True`` keeps ``a.key`` instead, for a store, where a paper keeps the key it was
    first recorded under.
    """
    key, seen = a.key, tuple(dict.fromkeys((*a.sources, *b.sources)))
    if b.arxiv_id and not a.arxiv_id:
        a, b = b, _without_data(a)
    return type(a)(
        key=key if keep_key else "",
        arxiv_id=a.arxiv_id or b.arxiv_id,
        title=a.title,
        abstract=_longer(a.abstract, b.abstract),
        authors=a.authors if len(a.authors) >= len(b.authors) else b.authors,
        author_count=_max(a.author_count, b.author_count),
        organization=a.organization or b.organization,
        submitter_organization=a.submitter_organization or b.submitter_organization,
        published=a.published or b.published,
        upvotes=_max(a.upvotes, b.upvotes),
        ai_summary=_longer(a.ai_summary or "", b.ai_summary or "") or None,
        ai_keywords=a.ai_keywords or b.ai_keywords,
        github_repo=a.github_repo or b.github_repo,
        github_stars=_max(a.github_stars, b.github_stars),
        project_page=a.project_page or b.project_page,
        url=a.url or b.url,
        sources=seen,
    )


def _without_data(paper: Paper) -> Paper:
    """What an id-less record may still add to the record of a paper with an id: counts and a
    date where the other has none, never text, people or links it could have made up."""
    return type(paper)(
        key=paper.key,
        title=paper.title,
        author_count=paper.author_count,
        published=paper.published,
        upvotes=paper.upvotes,
        sources=paper.sources,
    )


def _longer(a: str, b: str) -> str:
    return a if len(a) >= len(b) else b


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
