"""Within-batch de-duplication: the same paper read from several pages or formats becomes one.

Two records are the same paper when their arXiv ids are equal, or, when at least one of them has
no id (saved text pages never carry one), when their normalised titles (``digest.keys.title_key``:
case, punctuation, whitespace and unicode forms folded) are equal. Two different arXiv ids are two
papers even under the same title. Merging keeps the richest value of every field and every source.
"""

from __future__ import annotations

from collections.abc import Iterable

from digest.models import Paper


def merge_papers(papers: Iterable[Paper]) -> list[Paper]:
    """One paper per distinct paper in ``papers``, in order of first appearance."""
    merged: list[Paper] = []
    by_id: dict[str, int] = {}
    by_title: dict[str, int] = {}
    for paper in papers:
        index = _find(paper, merged, by_id, by_title)
        if index is None:
            index = len(merged)
            merged.append(paper)
        else:
            merged[index] = merge_two(merged[index], paper)
        kept = merged[index]
        if kept.arxiv_id:
            by_id.setdefault(kept.arxiv_id, index)
        by_title.setdefault(kept.title_key, index)
    return merged


def _find(
    paper: Paper, merged: list[Paper], by_id: dict[str, int], by_title: dict[str, int]
) -> int | None:
    if paper.arxiv_id and paper.arxiv_id in by_id:
        return by_id[paper.arxiv_id]
    index = by_title.get(paper.title_key)
    if index is None:
        return None
    other = merged[index].arxiv_id
    return index if not (paper.arxiv_id and other and other != paper.arxiv_id) else None


def merge_two(a: Paper, b: Paper, *, keep_key: bool = False) -> Paper:
    """``a`` and ``b`` (the same paper) as one record with the richest fields of both.

    ``a`` wins ties (it was seen first). The key is recomputed from the merged id and title, so a
    title-only record that gains an arXiv id gets the id as key; ``keep_key=True`` keeps ``a.key``
    instead, for the store, where a paper keeps the key it was first recorded under.
    """
    return Paper(
        key=a.key if keep_key else "",
        arxiv_id=a.arxiv_id or b.arxiv_id,
        title=a.title,
        abstract=_longer(a.abstract, b.abstract),
        authors=a.authors if len(a.authors) >= len(b.authors) else b.authors,
        author_count=_max(a.author_count, b.author_count),
        organization=a.organization or b.organization,
        published=a.published or b.published,
        upvotes=_max(a.upvotes, b.upvotes),
        ai_summary=_longer(a.ai_summary or "", b.ai_summary or "") or None,
        ai_keywords=a.ai_keywords or b.ai_keywords,
        github_repo=a.github_repo or b.github_repo,
        github_stars=_max(a.github_stars, b.github_stars),
        project_page=a.project_page or b.project_page,
        url=a.url or b.url,
        sources=tuple(dict.fromkeys((*a.sources, *b.sources))),
    )


def _longer(a: str, b: str) -> str:
    return a if len(a) >= len(b) else b


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
