"""The promises against what the field sends: a record too big to show, a subscriber too big to
mail, day lists that grow after the day, a store that cannot be written, preview against run."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from digest import pipeline
from digest.config import Config, parse_config
from digest.report import RunReport
from digest.send import Sending
from digest.sources.fetch import make_client
from digest.stage_settings import open_configured_channel
from digest.store.sqlite import SqliteStore
from tests.conftest import LocalServer, Reply

FIXTURES = Path(__file__).resolve().parent / "fixtures"
API = FIXTURES / "samples" / "hf" / "api_2025-10-06.json"
NOW = dt.datetime(2025, 10, 6, 7, 0, tzinfo=dt.UTC)


def offline() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no network in this test: {request.url}")

    return httpx.Client(transport=httpx.MockTransport(refuse))


def write(folder: Path, text: str) -> Config:
    path = folder / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


def run(config: Config, now: dt.datetime = NOW, client: httpx.Client | None = None) -> RunReport:
    with contextlib.ExitStack() as stack:
        http = client or stack.enter_context(offline())
        store = stack.enter_context(SqliteStore.open(config.store_path))
        channel = stack.enter_context(open_configured_channel(config))
        return pipeline.run(
            config, client=http, store=store, channel=channel, now=now, day=now.date()
        )


def mail(config: Config) -> dict[str, list[EmailMessage]]:
    by_recipient: dict[str, list[EmailMessage]] = {}
    for path in sorted(config.resolve("outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        by_recipient.setdefault(message["To"].addresses[0].addr_spec, []).append(message)
    return by_recipient


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())


def api_with_title(folder: Path, title: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(API.read_text(encoding="utf-8"))
    entries[0]["paper"]["title"] = title  # type: ignore[index]
    (folder / "api.json").write_text(json.dumps(entries), encoding="utf-8")
    return entries


SOURCES = '[[sources]]\nkind = "page"\npath = "api.json"\n[delivery]\nmethod = "file"\n'


# --- item 1: a record that cannot be shown ------------------------------------------------------


@pytest.mark.parametrize("size", [120_000, 2_000_000], ids=["120KB", "2MB"])
def test_a_giant_title_costs_only_itself_a_shortened_line(tmp_path: Path, size: int) -> None:
    entries = api_with_title(tmp_path, ("Reasoning about giants " * (size // 23 + 1))[:size])
    config = write(
        tmp_path,
        SOURCES + '[[subscribers]]\nemail = "ada@example.org"\n'
        'keywords = ["reasoning", "language model", "diffusion"]\nmax_papers = 50\n',
    )
    report = run(config)
    assert report.exit_code == 0
    (message,) = mail(config)["ada@example.org"]
    assert "no new papers" not in str(message["Subject"])
    body = text_of(message)
    assert "Reasoning about giants Reasoning" in body and "…" in body  # shown, shortened
    assert len(message.as_bytes()) < 400_000
    others = [e["paper"]["title"] for e in entries[1:]]  # type: ignore[index]
    matched = [
        t for t in others if "reasoning" in str(t).lower() or "language model" in str(t).lower()
    ]
    assert matched and all(" ".join(str(t).split()) in body for t in matched)
    # Weeks later nothing is owed and nothing comes again.
    later = run(config, NOW + dt.timedelta(days=30))
    assert not any(o.sent for o in later.outcomes)
    with SqliteStore.open(config.store_path) as store:
        assert store.owed_papers(["ada@example.org"]) == {"ada@example.org": []}


# --- item 2: a subscriber whose own part cannot fit ----------------------------------------------


def test_a_subscriber_with_a_huge_name_and_interests_still_gets_a_digest(tmp_path: Path) -> None:
    api_with_title(tmp_path, "Reasoning in the small")
    keywords = json.dumps(["reasoning"] + [f"topic{n}" for n in range(20_000)])
    config = write(
        tmp_path,
        SOURCES + f'[[subscribers]]\nemail = "big@example.org"\nname = "{"N" * 200_000}"\n'
        f"keywords = {keywords}\n"
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["reasoning"]\n',
    )
    report = run(config)
    assert report.exit_code == 0
    sent = mail(config)
    assert set(sent) == {"big@example.org", "ada@example.org"}
    assert len(sent["big@example.org"][0].as_bytes()) < 120_000
    assert "and 19989 more" in text_of(sent["big@example.org"][0])


def test_a_subscriber_whose_email_cannot_fit_fails_alone_and_is_served_later(
    tmp_path: Path,
) -> None:
    api_with_title(tmp_path, "Reasoning in the small")
    (tmp_path / "mine").mkdir()
    bundled = (Path(__file__).resolve().parent.parent / "templates" / "digest.html.j2").read_text()
    bloated = bundled.replace(
        "<body",
        '{% if subscriber_email == "big@example.org" %}' + "x" * 20_000 + "{% endif %}<body",
    )
    (tmp_path / "mine" / "digest.html.j2").write_text(bloated)
    text = (
        '[digest]\nmax_html_bytes = 12000\ntemplates = "mine"\n'
        + SOURCES
        + '[[subscribers]]\nemail = "big@example.org"\nkeywords = ["reasoning"]\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["reasoning"]\n'
    )
    config = write(tmp_path, text)
    report = run(config)
    assert report.exit_code == 1
    (failed,) = report.failed_deliveries
    assert failed.email == "big@example.org" and failed.permanent
    assert "big@example.org" in (failed.error or "") and "size budget" in (failed.error or "")
    assert set(mail(config)) == {"ada@example.org"}  # everyone else got theirs in that run
    # Fixed two weeks later, long after the lookback window: the papers are still owed.
    fixed = write(tmp_path, text.replace('templates = "mine"\n', ""))
    later = run(fixed, NOW + dt.timedelta(days=14))
    assert later.exit_code == 0
    (message,) = mail(fixed)["big@example.org"]
    assert "Reasoning in the small" in text_of(message)


# --- item 3: day lists that grow after the day ---------------------------------------------------


def api_day(count: int) -> bytes:
    return json.dumps(
        [
            {"paper": {"id": f"2607.{n:05d}", "title": f"Late paper {n}", "upvotes": n}}
            for n in range(count)
        ]
    ).encode()


def test_papers_added_late_to_a_day_are_delivered_once_each(
    tmp_path: Path, server: LocalServer
) -> None:
    day = "2026-07-31"
    server.script.replies[f"/api?date={day}&limit=100&p=0"] = [Reply(body=api_day(5))]
    server.script.replies["*"] = [Reply(body=b"[]")]
    config = write(
        tmp_path,
        f'[[sources]]\nkind = "hf-api"\nurl = "{server.url}/api"\n'
        '[delivery]\nmethod = "file"\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["late paper"]\nmax_papers = 100\n',
    )
    morning = dt.datetime(2026, 7, 31, 7, 0, tzinfo=dt.UTC)
    with make_client(timeout=2, connect_timeout=2) as client:
        first = run(config, morning, client)
        server.script.replies[f"/api?date={day}&limit=100&p=0"] = [Reply(body=api_day(30))]
        second = run(config, morning + dt.timedelta(days=1), client)  # the default days re-read it
        third = run(config, morning + dt.timedelta(days=2), client)
    reports = (first, second, third)
    assert [o.papers for report in reports for o in report.outcomes if o.sent] == [5, 25]
    titles = [text_of(m) for m in mail(config)["ada@example.org"]]
    for n in range(30):
        assert sum(f"Late paper {n} " in t + " " for t in titles) == 1, n


# --- item 8: preview tells the truth -------------------------------------------------------------


def numbered(text: str) -> list[str]:
    """The numbered title lines of a text part: the papers, in order."""
    return [line for line in text.splitlines() if line[:3].strip(". ").isdigit()]


def test_the_preview_holds_exactly_the_papers_run_sends_in_the_same_order(tmp_path: Path) -> None:
    starter = tmp_path / "starter.toml"
    subprocess.run([sys.executable, "-m", "digest", "init", str(starter)], check=True,
                   capture_output=True)  # fmt: skip
    shutil.copy(API, tmp_path / "api.json")
    source = '\n[[sources]]\nkind = "page"\npath = "api.json"\n'
    text = starter.read_text() + source
    # Yesterday's run saw every paper but had nobody to send them to (the subscribers came
    # since): today they are known, still offered, and their upvote counts have turned over.
    head = text[: text.index("[[subscribers]]")] + source
    run(write(tmp_path, head), NOW - dt.timedelta(days=1))
    entries = json.loads(API.read_text(encoding="utf-8"))
    for entry in entries:
        entry["paper"]["upvotes"] = 1000 - entry["paper"]["upvotes"]
    (tmp_path / "api.json").write_text(json.dumps(entries))
    config = write(tmp_path, text)
    with offline() as client, SqliteStore.open(config.store_path, readonly=True) as store:
        pipeline.preview(
            config, client=client, store=store, now=NOW, day=NOW.date(), out_dir=tmp_path / "p"
        )
    run(config)
    compared = 0
    for subscriber in config.subscriber_list:
        slug = subscriber.email.replace("@", "-").replace(".", "-")
        expected = numbered((tmp_path / "p" / f"{slug}.txt").read_text())
        (message,) = mail(config)[subscriber.email]
        part = message.get_body(("plain",))
        assert part is not None
        assert numbered(str(part.get_content())) == expected
        compared += len(expected)
    assert compared > 10


# --- item 4: a store that cannot be written after the server accepted --------------------------


def test_a_store_locked_for_15_seconds_mid_run_sends_nothing_twice_and_misses_nothing(
    tmp_path: Path,
) -> None:
    pages = FIXTURES / "samples" / "text-pages"
    shutil.copytree(pages, tmp_path / "pages")
    subscribers = "".join(
        f'[[subscribers]]\nemail = "r{n}@example.org"\nkeywords = ["model"]\n' for n in range(150)
    )
    text = (
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n[delivery]\nmethod = "file"\n'
        + subscribers
    )
    config = write(tmp_path, text)
    # The lock is taken once the run has sent its first group: from then on, 15 s of a store
    # another process writes to (SQLite's own busy wait gives up after 10 s).
    locker = """
import sqlite3, sys, time, pathlib
path, ready = sys.argv[1], pathlib.Path(sys.argv[2])
while not pathlib.Path(path + '.go').exists():
    time.sleep(0.01)
conn = sqlite3.connect(path, isolation_level=None)
conn.execute('BEGIN IMMEDIATE')
ready.touch()
time.sleep(15)
conn.execute('ROLLBACK')
"""
    store_path = str(config.store_path)
    lock = subprocess.Popen([sys.executable, "-c", locker, store_path, str(tmp_path / "locked")])
    try:
        original_send = Sending.send
        state = {"count": 0}

        def send_then_lock(self: Sending, *args: object, **kwargs: object) -> None:
            original_send(self, *args, **kwargs)  # type: ignore[arg-type]
            state["count"] += 1
            if state["count"] == 101:
                Path(store_path + ".go").touch()
                deadline = time.monotonic() + 10
                while not (tmp_path / "locked").exists() and time.monotonic() < deadline:
                    time.sleep(0.01)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Sending, "send", send_then_lock)
            first = run(config)
    finally:
        lock.wait(timeout=60)
    assert first.exit_code == 1 and first.store_problem and first.unrecorded > 0
    assert all(o.sent for o in first.outcomes)  # sending went on meanwhile
    second = run(config, NOW + dt.timedelta(days=1))
    assert second.exit_code == 0 and not any(o.sent for o in second.outcomes)
    sent = mail(config)
    assert sorted(sent) == sorted(f"r{n}@example.org" for n in range(150))
    assert all(len(messages) == 1 for messages in sent.values())


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (skips when this machine cannot mount one)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_store_on_a_full_disk_sends_nothing_twice_and_misses_nothing(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "samples" / "text-pages", tmp_path / "pages")
    subscribers = "".join(
        f'[[subscribers]]\nemail = "r{n}@example.org"\nkeywords = ["model"]\n' for n in range(150)
    )
    with small_disk(tmp_path / "disk", "6m") as disk:
        text = (
            f'[digest]\nstore = "{disk / "digest.db"}"\n'
            '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n[delivery]\nmethod = "file"\n'
            + subscribers
        )
        config = write(tmp_path, text)
        original_send = Sending.send
        state = {"count": 0}

        def send_then_fill(self: Sending, *args: object, **kwargs: object) -> None:
            original_send(self, *args, **kwargs)  # type: ignore[arg-type]
            state["count"] += 1
            if state["count"] == 1:  # the plan is stored: now the disk fills up
                with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Sending, "send", send_then_fill)
            first = run(config)
        assert first.exit_code == 1 and first.unrecorded > 0
        assert all(o.sent for o in first.outcomes)
        (disk / "filler").unlink()
        second = run(config, NOW + dt.timedelta(days=1))
        assert second.exit_code == 0 and not any(o.sent for o in second.outcomes)
        with sqlite3.connect(disk / "digest.db") as conn:
            assert conn.execute(
                "SELECT COUNT(*) FROM digests WHERE status = 'sent'"
            ).fetchone() == (150,)
    sent = mail(config)
    assert len(sent) == 150 and all(len(messages) == 1 for messages in sent.values())
