"""Why a reader's digest is empty, in words, from what the run knows: the sources, the window, the
reader's filters and history.

A run that sends nothing, or "no papers", without saying why is the commonest complaint about
paper digests. The causes a run can tell apart, checked in this order:

- ``sources-failed``: nothing to offer, and a source could not be read (its papers come later);
- ``no-papers``: the sources listed no papers at all (a weekend, a holiday);
- ``nothing-new``: they listed papers, all seen on earlier days;
- ``all-sent``: papers matched, all of them were in earlier digests (sent, or below the cap);
- ``profile-cut``: the reader's rules matched new papers, and their profile (the verdicts
  "Fewer like this") left every one out: the first are named;
- ``none-matched``: papers were new and none matched; then the one or two that came closest are
  named with what kept each out (an ``exclude`` word, a ``require`` word missing,
  ``min_upvotes``, closeness below the threshold), found by ranking again with those filters
  lifted. That second ranking is paid only for the readers whose digest is empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from digest.match import Ranking, compile_interests
from digest.match.closeness import DEFAULT_MIN_SIMILARITY, top_share
from digest.models import Batch, Explanation, Match, NearMiss, Paper, Subscriber

if TYPE_CHECKING:
    from digest.match.semantic import PaperVectors

NEAR_MISSES = 2  # closest papers named in an empty digest
_PROBE = "probe@digest.invalid"
_ANY_CLOSENESS = 0.01  # a threshold every paper passes: the closest ones, however far


def source_note(batch: Batch) -> str | None:
    """The line every digest of a run carries when a source failed: what it may lack."""
    failed = len({failure.source for failure in batch.failures})
    if not failed:
        return None
    which = "One of the sources" if failed == 1 else f"{failed} of the sources"
    return f"{which} could not be read this time; its papers will come in a later digest."


def period_words(reader: Subscriber) -> str:
    """What a reader's window is called in a sentence: "today", "this week", "this month"."""
    return {"weekly": "this week", "monthly": "this month"}.get(reader.frequency, "today")


def explain_empty(
    readers: Sequence[Subscriber],
    candidates: Sequence[Paper],
    batch: Batch,
    *,
    skip: Mapping[str, Collection[str]],
    liked: Mapping[str, Paper] | None = None,
    store: PaperVectors | None = None,
) -> dict[str, Explanation]:
    """The explanation of each of ``readers`` (by email), whose digests hold no paper.

    ``candidates`` are the papers their window offered, ``skip`` the keys each already had,
    ``period`` the words for each reader's window (:func:`period_words`).
    """
    if not readers:
        return {}
    period = {reader.email: period_words(reader) for reader in readers}
    found: dict[str, Explanation] = {}
    if not candidates:
        for reader in readers:
            found[reader.email] = _nothing_offered(batch, period[reader.email])
        return found
    # Matched, but only by papers they already had? Ranked again with no history skipped.
    rules = compile_interests(readers, liked=liked, store=store)  # their rules, no profile
    again = rules.rank(candidates)
    unmatched: list[Subscriber] = []
    for reader in readers:
        had = skip.get(reader.email, ())
        earlier = again[reader.email].matched if had else 0
        if earlier:
            papers = "paper" if earlier == 1 else "papers"
            found[reader.email] = Explanation(
                cause="all-sent",
                line=f"The {earlier} {papers} {period[reader.email]} that match your interests "
                "were all in earlier digests.",
            )
        else:
            unmatched.append(reader)
    if unmatched:
        # Matched by their rules among papers they have not had, yet nothing was sent: only a
        # profile (their "Fewer like this" verdicts) cuts a rule's match, so it did.
        now = rules.rank(candidates, skip=skip)
        cut = [reader for reader in unmatched if now[reader.email].matched]
        for reader in cut:
            found[reader.email] = _cut_by_profile(now[reader.email], period[reader.email])
        rest = [reader for reader in unmatched if not now[reader.email].matched]
        if rest:
            found.update(_none_matched(rest, candidates, skip, period, liked, store))
    return found


def _cut_by_profile(ranking: Ranking, period: str) -> Explanation:
    papers = "paper" if ranking.matched == 1 else "papers"
    return Explanation(
        cause="profile-cut",
        line=f"{ranking.matched} {papers} {period} matched your interests, but each was like "
        "papers you marked “Fewer like this”, so it was left out.",
        near=tuple(
            NearMiss(paper=match.paper, reason="like papers you marked “Fewer like this”")
            for match in ranking.matches[:NEAR_MISSES]
        ),
    )


def _nothing_offered(batch: Batch, period: str) -> Explanation:
    if batch.failures:
        failed = len({failure.source for failure in batch.failures})
        sources = "a source" if failed == 1 else f"{failed} sources"
        return Explanation(
            cause="sources-failed",
            line=f"No papers {period}: {sources} could not be read; their papers will come in "
            "a later digest.",
        )
    if not batch.entries:
        return Explanation(
            cause="no-papers",
            line=f"The sources listed no papers {period} (a weekend or a holiday, most likely).",
        )
    papers = "paper" if len(batch.papers) == 1 else "papers"
    return Explanation(
        cause="nothing-new",
        line=f"The sources listed {len(batch.papers)} {papers} {period}, all seen on earlier "
        "days: nothing new to offer.",
    )


def _none_matched(
    readers: Sequence[Subscriber],
    candidates: Sequence[Paper],
    skip: Mapping[str, Collection[str]],
    period: Mapping[str, str],
    liked: Mapping[str, Paper] | None,
    store: PaperVectors | None,
) -> dict[str, Explanation]:
    lifted = [_without_filters(reader) for reader in readers]
    rankings = compile_interests(lifted, liked=liked, store=store).rank(candidates, skip=skip)
    found: dict[str, Explanation] = {}
    for reader in readers:
        had = skip.get(reader.email, ())
        offered = sum(1 for paper in candidates if paper.key not in had)
        papers = "new paper" if offered == 1 else "new papers"
        near = tuple(
            NearMiss(paper=match.paper, reason=reason)
            for match in rankings[reader.email].matches
            if (reason := _what_kept_out(reader, match))
        )[:NEAR_MISSES]
        found[reader.email] = Explanation(
            cause="none-matched",
            line=f"{offered} {papers} {period[reader.email]}; none matched your interests.",
            near=near,
        )
    return found


def _without_filters(reader: Subscriber) -> Subscriber:
    """``reader`` with nothing that filters papers out: what would match were it not for them."""
    meaning = bool(reader.about or reader.like)
    return dataclasses.replace(
        reader,
        require=(),
        exclude=(),
        min_upvotes=None,
        min_similarity=_ANY_CLOSENESS if meaning else reader.min_similarity,
        max_papers=NEAR_MISSES * 4,
    )


def _what_kept_out(reader: Subscriber, match: Match) -> str:
    """What kept ``match`` (found with the filters lifted) out of ``reader``'s digest, in words;
    empty when nothing did (it was only ranked below a match that also missed)."""
    paper = match.paper
    reasons: list[str] = []
    excluded = _found(reader.exclude, paper)
    if excluded:
        reasons.append(f"it mentions {_listed(excluded, 'and')}, which you exclude")
    present = set(_found(reader.require, paper))
    missing = [term for term in reader.require if term not in present]
    if missing:
        reasons.append(f"it does not mention {_listed(missing, 'or')}, which you require")
    if reader.min_upvotes is not None:
        if paper.upvotes is None:
            reasons.append(f"its upvotes are unknown; you ask for at least {reader.min_upvotes}")
        elif paper.upvotes < reader.min_upvotes:
            reasons.append(
                f"it has {paper.upvotes} upvotes, below your min_upvotes of {reader.min_upvotes}"
            )
    if not match.keywords and match.similarity is not None and match.close_to:
        threshold = reader.min_similarity or DEFAULT_MIN_SIMILARITY
        if match.similarity < threshold:
            reasons.append(
                f"its closeness to {match.close_to} is in the {top_share(match.similarity)} of "
                f"recent papers; your min_similarity of {threshold} asks for the "
                f"{top_share(threshold)}"
            )
    text = "; ".join(reasons)
    return text[:1].upper() + text[1:]


def _listed(terms: Sequence[str], conjunction: str) -> str:
    quoted = [f"“{term}”" for term in terms]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {conjunction} {quoted[-1]}"


def _found(terms: Sequence[str], paper: Paper) -> list[str]:
    """Which of ``terms`` match ``paper`` by the keyword rules (as written)."""
    if not terms:
        return []
    from digest.match.keywords import compile_interests as keyword_matcher

    probe = Subscriber(email=_PROBE, keywords=tuple(terms), max_papers=1)
    matches = keyword_matcher([probe]).rank_one(_PROBE, [paper]).matches
    return list(matches[0].keywords) if matches else []
