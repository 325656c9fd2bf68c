"""One full cycle on real parts: sample pages, SQLite store, file outbox; the promises."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from digest import pipeline
from digest.config import Config, parse_config
from digest.deliver import Channel
from digest.deliver.files import FileTransport
from digest.errors import TemporaryDeliveryError
from digest.report import RunReport
from digest.stage_settings import message_settings, open_configured_channel
from digest.store.sqlite import SqliteStore
from tests.deliver.memory import memory_channel, refuse

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples"
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
DAY = NOW.date()


def make_config(folder: Path, extra: str = "", *, sources: str | None = None) -> Config:
    pages = folder / "pages"
    if not pages.exists():
        shutil.copytree(SAMPLES / "text-pages", pages)
    text = sources if sources is not None else '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
    text += (
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nname = "Ada"\n'
        'keywords = ["attention head", "mixture of experts"]\n'
        '[[subscribers]]\nemail = "bob@example.org"\nkeywords = ["reasoning"]\nmax_papers = 500\n'
        + extra
    )
    path = folder / "digest.toml"
    path.write_text(text)
    return parse_config(text, path)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no network in this test: {request.url}")

    with httpx.Client(transport=httpx.MockTransport(refuse)) as c:
        yield c


def run(
    config: Config,
    client: httpx.Client,
    *,
    now: dt.datetime = NOW,
    channel: Channel | None = None,
    dry_run: bool = False,
) -> RunReport:
    with SqliteStore.open(config.store_path, readonly=dry_run) as store:
        if dry_run:
            return pipeline.run(
                config,
                client=client,
                store=store,
                channel=None,
                now=now,
                day=now.date(),
                dry_run=True,
            )
        with channel or open_configured_channel(config) as chosen:
            return pipeline.run(
                config, client=client, store=store, channel=chosen, now=now, day=now.date()
            )


def outbox(config: Config) -> dict[str, list[EmailMessage]]:
    """Messages in the outbox, by recipient address."""
    by_recipient: dict[str, list[EmailMessage]] = {}
    folder = config.resolve(config.delivery.option("outbox"))
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        address = message["To"].addresses[0].addr_spec
        by_recipient.setdefault(address, []).append(message)
    return by_recipient


def titles_in(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())


def test_a_full_run_delivers_each_subscriber_their_papers(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    report = run(config, client)
    assert (report.entries, report.papers, report.new) == (184, 178, 178)
    assert report.exit_code == 0
    mail = outbox(config)
    assert set(mail) == {"ada@example.org", "bob@example.org"}
    assert [len(m) for m in mail.values()] == [1, 1]
    ada_text = titles_in(mail["ada@example.org"][0])
    assert "Successor Heads: Recurring, Interpretable Attention Heads In The Wild" in ada_text
    assert "Thinking Sparks!: Emergent Attention Heads in Reasoning Models" in ada_text
    bob_text = titles_in(mail["bob@example.org"][0])
    assert "RECKONING: Reasoning through Dynamic Knowledge Encoding" in bob_text
    assert "Successor Heads" not in bob_text


def test_second_run_finds_nothing_new_and_sends_nothing(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    run(config, client)
    again = run(config, client, now=NOW + dt.timedelta(days=1))
    assert again.new == 0
    assert not any(o.sent for o in again.outcomes)
    assert [len(m) for m in outbox(config).values()] == [1, 1]


def test_same_paper_from_the_api_later_is_not_sent_again(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    run(config, client)
    before = [m["Message-ID"] for m in outbox(config)["bob@example.org"]]
    entry = {
        "paper": {
            "id": "2305.06349v2",
            "title": "RECKONING: Reasoning through\n  Dynamic Knowledge Encoding",
            "summary": "Recent studies on transformer-based language models ...",
            "authors": [{"name": "Zeming Chen", "hidden": False}],
            "upvotes": 3,
        },
        "title": "RECKONING: Reasoning through Dynamic Knowledge Encoding",
    }
    (tmp_path / "api.json").write_text(json.dumps([entry]))
    later = make_config(tmp_path, sources='[[sources]]\nkind = "page"\npath = "api.json"\n')
    report = run(later, client, now=NOW + dt.timedelta(hours=1))
    assert report.new == 0
    assert [m["Message-ID"] for m in outbox(later)["bob@example.org"]] == before


def flaky(config: Config, refused: str) -> Channel:
    """The outbox channel, except that it refuses one recipient as an SMTP 451 would."""
    outbox = FileTransport(config.resolve(config.delivery.option("outbox")))
    error = TemporaryDeliveryError("451 try again later", where="smtp")
    channel, _ = memory_channel(message_settings(config), fail=refuse(refused, error), then=outbox)
    return channel


def test_failed_delivery_goes_out_next_run_exactly_once(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    first = run(config, client, channel=flaky(config, "ada@example.org"))
    assert first.exit_code == 1
    assert [o.email for o in first.failed_deliveries] == ["ada@example.org"]
    assert "ada@example.org" not in outbox(config)
    second = run(config, client, now=NOW + dt.timedelta(days=1))
    assert second.exit_code == 0
    third = run(config, client, now=NOW + dt.timedelta(days=2))
    assert not any(o.sent for o in third.outcomes)
    mail = outbox(config)
    assert len(mail["ada@example.org"]) == 1 and len(mail["bob@example.org"]) == 1
    assert "Successor Heads" in titles_in(mail["ada@example.org"][0])


def test_failed_papers_are_owed_even_after_the_lookback_window(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    run(config, client, channel=flaky(config, "ada@"))
    run(config, client, now=NOW + dt.timedelta(days=30))
    assert len(outbox(config)["ada@example.org"]) == 1


def test_dry_run_and_preview_change_nothing(tmp_path: Path, client: httpx.Client) -> None:
    config = make_config(tmp_path)
    run(config, client, now=NOW - dt.timedelta(days=1))  # a store with history
    shutil.rmtree(config.resolve("outbox"))
    snapshot = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    report = run(config, client, dry_run=True)
    assert report.dry_run and report.new == 0
    with SqliteStore.open(config.store_path, readonly=True) as store:
        result = pipeline.preview(
            config, client=client, store=store, now=NOW, day=DAY, out_dir=tmp_path / "preview"
        )
    assert result.paths and all(p.exists() for p in result.paths)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == snapshot
    assert not config.resolve("outbox").exists()


def test_preview_of_a_fresh_setup_shows_todays_papers(tmp_path: Path, client: httpx.Client) -> None:
    config = make_config(tmp_path)
    with SqliteStore.open(config.store_path, readonly=True) as store:
        result = pipeline.preview(
            config,
            client=client,
            store=store,
            now=NOW,
            day=DAY,
            out_dir=tmp_path / "preview",
            only="ada@example.org",
        )
    assert not config.store_path.exists()
    html = [p for p in result.paths if p.suffix == ".html" and p.name != "index.html"]
    assert len(html) == 1
    assert "Successor Heads" in html[0].read_text()


def test_one_broken_source_does_not_stop_the_others(tmp_path: Path, client: httpx.Client) -> None:
    (tmp_path / "broken.json").write_bytes(
        (SAMPLES / "hf" / "bad_2024-12-11_repr_strings.json").read_bytes()
    )
    sources = (
        '[[sources]]\nkind = "page"\npath = "broken.json"\n'
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
    )
    config = make_config(tmp_path, sources=sources)
    report = run(config, client)
    assert report.exit_code == 1
    assert len(report.failures) == 1 and "broken.json" in report.failures[0].source
    assert set(outbox(config)) == {"ada@example.org", "bob@example.org"}
    assert any("broken.json" in line for line in report.summary())


def test_nothing_matched_sends_nothing_unless_asked(tmp_path: Path, client: httpx.Client) -> None:
    config = make_config(
        tmp_path, '[[subscribers]]\nemail = "cy@example.org"\nkeywords = ["zymurgy"]\n'
    )
    report = run(config, client)
    assert "cy@example.org" not in outbox(config)
    assert [o.skipped for o in report.outcomes if o.email == "cy@example.org"] == [
        "178 new papers today; none matched your interests."
    ]

    chatty = make_config(
        tmp_path / "chatty",
        '[[subscribers]]\nemail = "cy@example.org"\nkeywords = ["zymurgy"]\n'
        "[digest]\nsend_empty = true\n",
    )
    run(chatty, client)
    assert len(outbox(chatty)["cy@example.org"]) == 1


def test_summary_lists_failures_always_and_others_only_when_few(
    tmp_path: Path, client: httpx.Client
) -> None:
    many = "".join(
        f'[[subscribers]]\nemail = "r{n}@example.org"\nkeywords = ["reasoning"]\n'
        for n in range(30)
    )
    config = make_config(tmp_path, many)
    report = run(config, client, channel=flaky(config, "r7@"))
    lines = list(report.summary())
    assert len(lines) == 3, lines
    assert "r7@example.org" in lines[1] and "FAILED" in lines[1]
    assert lines[2].startswith("sent 31 of 32 digests (")
    assert len(list(report.summary(every_subscriber=True))) == 34
