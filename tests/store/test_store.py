"""Every store backend on a real database (SQLite files, a throwaway PostgreSQL cluster): the
same promises, one parametrised fixture. Backend-specific behaviour: test_sqlite, test_postgres."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.models import Paper
from digest.store import Accepted, PlannedDigest, Refused, Store, open_store
from digest.store.sqlite import SCHEMA_VERSION
from tests.store.conftest import (
    ADA,
    API_FOR_PAGES,
    API_SAMPLE,
    NOW,
    api_papers,
    delivered,
    fail,
    owed,
    plan,
    send,
    text_page_papers,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend."""
    if request.param == "sqlite":
        location = str(tmp_path / "digest.db")
    else:
        location = request.getfixturevalue("pg_url")
    with open_store(location, base_dir=tmp_path) as opened:
        yield opened


# --- seen papers (promise 1) -------------------------------------------------------------------


def test_five_text_pages_twice_second_time_nothing_is_new(store: Store) -> None:
    papers = text_page_papers()
    distinct = {p.title_key for p in papers}
    assert len(papers) > len(distinct) > 100  # the pages repeat some papers (RECKONING, ...)

    first = store.observe(papers, NOW)
    second = store.observe(papers, NOW + dt.timedelta(days=1))

    assert len(first.new) == len(distinct) and first.known == []
    assert second.new == []
    assert {p.key for p in second.known} == {p.key for p in first.new}
    assert store.stats().papers == len(distinct)


def test_same_paper_from_api_with_id_version_or_rewrapped_title_is_not_new(
    store: Store,
) -> None:
    pages = text_page_papers()
    store.observe(pages, NOW)
    page_key = {p.title_key: p.key for p in pages}

    raw = API_FOR_PAGES.read_text(encoding="utf-8")
    assert "2309.06922v2" in raw and "Movement\\n  through" in raw  # what the fixture exercises
    seen = store.observe(api_papers(API_FOR_PAGES), NOW + dt.timedelta(hours=1))

    assert seen.new == []
    assert len(seen.known) == 3
    for paper in seen.known:
        assert paper.key == page_key[paper.title_key]  # the key the text page stored it under
        assert paper.key.startswith("title:") and paper.arxiv_id is not None
    # The arXiv ids are now known, with or without version, and so is the merged record.
    hydra = next(p for p in seen.known if p.title.startswith("Hydra"))
    assert hydra.arxiv_id == "2309.06922"
    rows = {row.key: row for row in store.list_seen()}
    assert rows[hydra.key].arxiv_id == "2309.06922"
    again = store.observe(
        [Paper(arxiv_id="2309.06922v3", title="Hydra (renamed on arXiv)")], NOW, record=False
    )
    assert again.new == [] and again.known[0].key == hydra.key
    # And the same text pages read once more are still not new.
    assert store.observe(pages, NOW + dt.timedelta(days=1)).new == []


def test_api_first_then_text_page_keeps_the_arxiv_key(store: Store) -> None:
    store.observe(api_papers(API_FOR_PAGES), NOW)
    seen = store.observe(text_page_papers(), NOW + dt.timedelta(hours=1))
    reckoning = [p for p in seen.known if p.title.startswith("RECKONING")]
    assert [p.key for p in reckoning] == ["2305.06349"]
    assert len(seen.known) == 3
    assert "RECKONING" not in " ".join(p.title for p in seen.new)


def test_two_arxiv_ids_under_one_title_are_two_papers(store: Store) -> None:
    first = store.observe([Paper(arxiv_id="2401.00001", title="Attention")], NOW)
    second = store.observe([Paper(arxiv_id="2401.00002", title="attention.")], NOW)
    assert [p.key for p in first.new] == ["2401.00001"]
    assert [p.key for p in second.new] == ["2401.00002"]
    # A copy without id is the one seen first.
    third = store.observe([Paper(title="ATTENTION")], NOW, record=False)
    assert [p.key for p in third.known] == ["2401.00001"]


def test_duplicates_within_one_call_merge_into_one_entry(store: Store) -> None:
    text = Paper(title="Order Matters: Sequence to sequence for sets", abstract="short")
    api = Paper(arxiv_id="1511.06391v4", title="Order matters:\n  sequence to sequence for sets")
    seen = store.observe([text, api, text], NOW)
    assert len(seen.new) == 1 and seen.known == []
    assert seen.new[0].key == text.key and seen.new[0].arxiv_id == "1511.06391"
    assert store.observe([api], NOW, record=False).known[0].key == text.key


def test_observe_without_record_writes_nothing(store: Store) -> None:
    papers = api_papers(API_SAMPLE)
    preview = store.observe(papers, NOW, record=False)
    assert len(preview.new) == len({p.key for p in papers}) > 0
    assert store.stats().papers == 0
    assert store.recent_papers(NOW - dt.timedelta(days=1)) == []


def test_recent_papers_are_the_latest_records_newest_first(store: Store) -> None:
    older = Paper(title="An older paper")
    store.observe([older], NOW - dt.timedelta(days=5))
    store.observe([Paper(title="A newer paper")], NOW)
    store.observe([Paper(title="An older paper", arxiv_id="2401.01234", upvotes=7)], NOW)

    recent = store.recent_papers(NOW - dt.timedelta(days=7))
    assert [p.title for p in recent] == ["A newer paper", "An older paper"]
    assert recent[1].key == older.key and recent[1].upvotes == 7
    assert [p.title for p in store.recent_papers(NOW - dt.timedelta(days=1))] == ["A newer paper"]


def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone"):
        store.observe([Paper(title="x")], dt.datetime(2025, 1, 1))


# --- the ledger (promises 1 and 2) -------------------------------------------------------------


def test_failed_delivery_is_owed_until_sent_then_never_again(store: Store) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new[:3]
    keys = [p.key for p in papers]
    run = store.begin_run(NOW)
    first = fail(store, run, ADA, keys, NOW)
    store.finish_run(run, NOW, "1 failed")

    # Long after the lookback window, the papers are still owed.
    later = NOW + dt.timedelta(days=30)
    assert store.recent_papers(later - dt.timedelta(days=3)) == []
    assert sorted(p.key for p in owed(store, "Ada@Example.org")) == sorted(keys)
    assert delivered(store, ADA) == set()

    run = store.begin_run(later)
    again = send(store, run, ADA, keys, later)
    assert again.digest_id == first.digest_id  # the open digest is re-used: same name
    assert owed(store, ADA) == []
    assert delivered(store, ADA) == set(keys)

    # A sent digest is never turned back into an owed one.
    store.mark_failed(run, [Refused(again.row, ADA, "late failure")], later)
    assert owed(store, ADA) == [] and delivered(store, ADA) == set(keys)
    stats = store.stats()
    assert (stats.sent, stats.pending, stats.failed, stats.subscribers, stats.runs) == (
        3,
        0,
        0,
        1,
        2,
    )
    assert stats.digests == 1
    assert delivered(store, "bob@example.org") == set()
    state = store.subscriber_states()["ada@example.org"]
    assert (state.digests_sent, state.papers_received, state.bounces) == (1, 3, 0)


def test_recording_a_sent_digest_twice_counts_it_once(store: Store) -> None:
    key = store.observe([Paper(arxiv_id="2401.00001", title="Once")], NOW).new[0].key
    run = store.begin_run(NOW)
    digest = plan(store, run, ADA, [key], NOW, [])
    accepted = [Accepted(digest.row, ADA, "<m@x>", (key,))]
    assert store.mark_sent(run, accepted, NOW) == 1
    assert store.mark_sent(run, accepted, NOW) == 0  # a journal replayed after the store had it
    store.finish_run(run, NOW, "sent 1")
    assert store.list_seen()[0].sent == 1
    assert store.subscriber_states()["ada@example.org"].digests_sent == 1


def test_sent_counts_recorded_a_digest_at_a_time_are_all_there_when_the_run_ends(
    store: Store,
) -> None:
    """A shared store adds to the papers' sent counts once per many digests (so workers do not
    queue behind each other's commits on the day's popular papers): none is lost by the end."""
    keys = [p.key for p in store.observe(api_papers(API_SAMPLE), NOW).new[:4]]
    run = store.begin_run(NOW)
    readers = [f"reader{n}@example.org" for n in range(230)]
    digests = store.plan_digests(
        run, NOW.date(), [PlannedDigest(r, tuple(keys[: 1 + n % 4]), ()) for n, r in
                          enumerate(readers)], NOW,
    )  # fmt: skip
    for digest in digests:  # as a shared store records them: each at once
        store.mark_sent(run, [Accepted(digest.row, digest.email, "<m@x>", digest.papers)], NOW)
    store.finish_run(run, NOW, "sent 230")
    sent = {row.key: row.sent for row in store.list_seen()}
    expected = {key: sum(1 for n in range(230) if i < 1 + n % 4) for i, key in enumerate(keys)}
    assert {key: sent[key] for key in keys} == expected
    states = store.subscriber_states()
    assert all(states[r].digests_sent == 1 for r in readers)


def test_papers_passed_over_by_a_sent_digest_are_not_offered_again(store: Store) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new[:5]
    sent, over = [p.key for p in papers[:2]], [p.key for p in papers[2:]]
    run = store.begin_run(NOW)
    send(store, run, ADA, sent, NOW, passed_over=over)
    assert delivered(store, ADA) == set(sent) | set(over)
    assert owed(store, ADA) == []
    assert store.stats().sent == 2  # passed over is not delivered
    assert delivered(store, "bob@example.org") == set()
    assert store.forget(over[0])
    assert delivered(store, ADA) == set(sent) | set(over[1:])


def test_deliveries_are_read_only_for_the_window(store: Store) -> None:
    old = store.observe([Paper(arxiv_id="2401.00001", title="Old")], NOW).new[0].key
    send(store, store.begin_run(NOW), ADA, [old], NOW)
    later = NOW + dt.timedelta(days=10)
    new = store.observe([Paper(arxiv_id="2401.00002", title="New")], later).new[0].key
    send(store, store.begin_run(later), ADA, [new], later)
    assert delivered(store, ADA, since=later - dt.timedelta(days=4)) == {new}
    assert delivered(store, ADA) == {old, new}


def test_a_second_digest_on_one_day_gets_a_name_of_its_own(store: Store) -> None:
    keys = [p.key for p in store.observe(api_papers(API_SAMPLE), NOW).new[:2]]
    run = store.begin_run(NOW)
    first = send(store, run, ADA, keys[:1], NOW)
    second = send(store, run, ADA, keys[1:], NOW + dt.timedelta(hours=5))
    assert second.digest_id == f"{first.digest_id}-2"


def test_prune_drops_old_digests_and_records_but_keeps_identities_and_what_is_owed(
    store: Store,
) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new
    run = store.begin_run(NOW)
    send(store, run, ADA, [papers[0].key], NOW)
    fail(store, run, "bob@example.org", [papers[1].key], NOW)
    report = store.prune(NOW + dt.timedelta(days=40), keep=dt.timedelta(days=10))
    assert report.digests == 1 and report.records == len(papers) - 1
    # Identity survives: the same papers read again are not new, and Bob's are still owed.
    assert store.observe(api_papers(API_SAMPLE), NOW + dt.timedelta(days=40)).new == []
    assert [p.key for p in owed(store, "bob@example.org")] == [papers[1].key]
    assert store.subscriber_states()["ada@example.org"].digests_sent == 1


def test_forget_by_versioned_id_and_reset(store: Store) -> None:
    store.observe(api_papers(API_FOR_PAGES), NOW)
    run = store.begin_run(NOW)
    send(store, run, ADA, ["2305.06349", "2308.10874"], NOW)

    assert store.forget("2305.06349v3") is True
    assert store.forget("2305.06349") is False
    assert delivered(store, ADA) == {"2308.10874"}
    assert [p.key for p in store.observe(api_papers(API_FOR_PAGES), NOW, record=False).new] == [
        "2305.06349"
    ]

    store.reset()
    stats = store.stats()
    assert (stats.papers, stats.sent, stats.runs) == (0, 0, 0)
    assert stats.schema_version == SCHEMA_VERSION
    assert len(store.observe(api_papers(API_FOR_PAGES), NOW).new) == 3


def test_list_seen_and_stats_describe_the_store(store: Store) -> None:
    store.observe([Paper(title="First")], NOW - dt.timedelta(days=1))
    store.observe([Paper(arxiv_id="2401.01234", title="Second")], NOW)
    send(store, store.begin_run(NOW), ADA, ["2401.01234"], NOW)

    rows = store.list_seen()
    assert [(r.title, r.sent) for r in rows] == [("Second", 1), ("First", 0)]
    assert rows[0].first_seen == NOW and rows[0].arxiv_id == "2401.01234"
    assert len(store.list_seen(limit=1)) == 1
    stats = store.stats()
    assert stats.first_seen == NOW - dt.timedelta(days=1) and stats.last_seen == NOW
    assert stats.size > 0
    assert dict(stats.as_rows())["papers seen"] == "2"


def test_paper_vectors_are_kept_replaced_and_pruned_with_their_paper(store: Store) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new
    first, second = papers[0].key, papers[1].key
    vector = bytes(range(256)) * 4  # 256 float32s' worth of bytes, every value once
    store.save_paper_vectors([(first, "model a", vector), (second, "model a", vector[::-1])])
    assert store.paper_vectors([first, second, "nothing"]) == {
        first: ("model a", vector),
        second: ("model a", vector[::-1]),
    }
    store.save_paper_vectors([(first, "model b", vector[::-1])])  # new text or a new model
    assert store.paper_vectors([first]) == {first: ("model b", vector[::-1])}
    run = store.begin_run(NOW)
    send(store, run, ADA, [first], NOW)
    store.prune(NOW + dt.timedelta(days=40), keep=dt.timedelta(days=10))
    assert store.paper_vectors([first, second]) == {}  # their records went, so did the vectors


def test_the_recent_vectors_are_the_latest_papers_by_one_model_and_samples_outlive_pruning(
    store: Store,
) -> None:
    older = store.observe(api_papers(API_SAMPLE)[:2], NOW - dt.timedelta(days=3)).new
    newer = store.observe(api_papers(API_SAMPLE)[2:4], NOW).new
    vector = bytes(range(256)) * 4
    rows = [(p.key, f"model a {n}", vector) for n, p in enumerate([*older, *newer])]
    store.save_paper_vectors([*rows, (newer[1].key, "model b 9", vector)])  # re-embedded by b
    store.save_paper_vectors([("sample:2401.00001", "model a 7", vector[::-1])])
    recent = store.recent_paper_vectors("model a", 2)
    assert recent[0][0] == newer[0].key  # the newest first, model b's row left out
    assert recent[1][0] in {older[0].key, older[1].key}
    assert all(raw == vector for _, raw in recent)
    assert {key for key, _ in store.recent_paper_vectors("model a", 10)} == {
        newer[0].key,
        older[0].key,
        older[1].key,
    }  # fmt: skip  (a bundled sample's vector is not a paper of a day)
    store.prune(NOW + dt.timedelta(days=40), keep=dt.timedelta(days=10))
    assert store.recent_paper_vectors("model a", 10) == []
    assert store.paper_vectors(["sample:2401.00001"]) == {
        "sample:2401.00001": ("model a 7", vector[::-1])
    }


# --- the reader's pages -------------------------------------------------------------------------


def test_past_digests_are_the_readers_sent_ones_newest_first(store: Store) -> None:
    keys = [p.key for p in store.observe(api_papers(API_SAMPLE), NOW).new[:4]]
    first = send(store, store.begin_run(NOW), ADA, keys[:2], NOW)
    later = NOW + dt.timedelta(days=1)
    fail(store, store.begin_run(later), ADA, keys[2:3], later)  # not sent: not listed
    latest = send(store, store.begin_run(later), ADA, keys[3:], later + dt.timedelta(hours=1))
    bobs = send(store, store.begin_run(later), "bob@example.org", keys[:1], later)
    past = store.past_digests("Ada@Example.org")
    assert [(d.digest_id, d.papers) for d in past] == [
        (latest.digest_id, tuple(keys[3:])),
        (first.digest_id, tuple(keys[:2])),
    ]
    assert store.past_digest(ADA, first.digest_id) == past[1]
    assert store.past_digest(ADA, bobs.digest_id) is None  # another reader's
    assert store.past_digest(ADA, "no-such-digest") is None


def test_preferences_are_kept_replaced_and_dropped(store: Store) -> None:
    assert store.preferences() == {}
    store.save_preferences("Ada@Example.org", {"keywords": ["robot"], "max_papers": 5}, NOW)
    store.save_preferences("bob@example.org", {"frequency": "weekly"}, NOW)
    assert store.preferences([ADA]) == {ADA: {"keywords": ["robot"], "max_papers": 5}}
    store.save_preferences(ADA, {"about": ["web agents"]}, NOW)
    assert store.preferences()[ADA] == {"about": ["web agents"]}
    store.save_preferences(ADA, {}, NOW)
    assert store.preferences() == {"bob@example.org": {"frequency": "weekly"}}


def test_verdicts_are_recorded_replaced_cleared_and_outlive_pruning(store: Store) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new
    first, second = papers[0].key, papers[1].key
    assert store.verdicts() == {}
    assert store.record_verdict("Ada@Example.org", first, 1, NOW)
    assert not store.record_verdict(ADA, first, 1, NOW)  # the same again changes nothing
    assert store.record_verdict(ADA, second, -1, NOW)
    assert store.record_verdict("bob@example.org", first, -1, NOW)
    assert store.verdicts([ADA]) == {ADA: {first: 1, second: -1}}
    assert store.record_verdict(ADA, second, None, NOW)
    assert store.verdicts() == {ADA: {first: 1}, "bob@example.org": {first: -1}}
    # Old papers are pruned, but not the ones a reader judged: their profile still needs them.
    store.prune(NOW + dt.timedelta(days=40), keep=dt.timedelta(days=10))
    kept = store.papers_by_key({first, second})
    assert set(kept) == {first}


def test_each_change_to_a_readers_verdicts_raises_their_revision(store: Store) -> None:
    papers = store.observe(api_papers(API_SAMPLE), NOW).new
    first, second, third = (p.key for p in papers[:3])
    assert store.verdict_revisions([ADA]) == {}
    store.record_verdict(ADA, first, 1, NOW)
    store.record_verdict("bob@example.org", second, -1, NOW)
    assert store.verdict_revisions([ADA, "bob@example.org"]) == {ADA: 1, "bob@example.org": 1}
    assert store.verdict_revisions(["Ada@Example.org"]) == {ADA: 1}
    store.record_verdict(ADA, first, 1, NOW)  # no change, no new revision
    store.record_verdict(ADA, first, -1, NOW)
    store.record_verdict(ADA, second, 1, NOW)
    assert store.verdict_revisions([ADA]) == {ADA: 3}
    assert store.verdicts_on([first, second, third]) == {
        ADA: {first, second},
        "bob@example.org": {second},
    }
    assert store.verdicts_on([third]) == {}


def test_a_reader_whose_last_verdict_goes_loses_their_revision_and_profile(store: Store) -> None:
    from digest.store import KeptProfile

    papers = store.observe(api_papers(API_SAMPLE), NOW).new
    first, second = papers[0].key, papers[1].key
    store.record_verdict(ADA, first, 1, NOW)
    store.record_verdict(ADA, second, -1, NOW)
    store.record_verdict("bob@example.org", first, 1, NOW)
    profile = KeptProfile("tag", b"\x00\x00\x80?", (first,))
    store.save_reader_profiles({ADA: profile, "bob@example.org": profile})
    assert store.reader_profiles([ADA]) == {ADA: profile}
    store.record_verdict(ADA, second, None, NOW)
    assert store.verdict_revisions([ADA]) == {ADA: 3} and ADA in store.reader_profiles([ADA])
    # forgetting the paper takes the verdicts on it, and so both readers' last ones
    assert store.forget(first)
    assert store.verdicts() == {}
    assert store.verdict_revisions([ADA, "bob@example.org"]) == {}
    assert store.reader_profiles([ADA, "bob@example.org"]) == {}
