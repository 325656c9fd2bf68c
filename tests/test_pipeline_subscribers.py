"""Subscribers as people through real runs: a week of daily runs with a weekly reader, an address
refused three runs in a row, one subscriber's digest on its own."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest import pipeline
from digest.config import Config, parse_config
from digest.deliver import MessageSettings
from digest.deliver.mail import MailChannel
from digest.deliver.smtp import SmtpSettings, SmtpTransport
from digest.report import RunReport
from digest.store.sqlite import SqliteStore
from tests.smtp_server import Handler, smtp_server

SAMPLES_TEXT = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"

SATURDAY = dt.datetime(2026, 11, 21, 7, 0, tzinfo=dt.UTC)
FRIDAY = SATURDAY + dt.timedelta(days=6)


def day_papers(day: int, count: int = 3) -> list[dict[str, object]]:
    """``count`` papers first published on ``day`` (0 = Saturday), each about agents."""
    return [
        {
            "paper": {
                "id": f"2611.{day:02d}{n:03d}",
                "title": f"Agent study {n} of day {day}",
                "summary": f"We study an agent, day {day} number {n}.",
                "upvotes": n,
            }
        }
        for n in range(count)
    ]


def make_config(folder: Path, extra: str = "") -> Config:
    text = (
        '[[sources]]\nkind = "page"\npath = "today.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        '[[subscribers]]\nemail = "daily@example.org"\nkeywords = ["agent"]\nmax_papers = 50\n'
        '[[subscribers]]\nemail = "weekly@example.org"\nkeywords = ["agent"]\nmax_papers = 50\n'
        'frequency = "weekly"\nweekday = "friday"\n' + extra
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


def run_day(
    config: Config,
    client: httpx.Client,
    now: dt.datetime,
    channel: MailChannel | None = None,
    only: str | None = None,
) -> RunReport:
    with SqliteStore.open(config.store_path) as store:
        if channel is None:
            from digest.stage_settings import open_configured_channel

            with open_configured_channel(config) as files:
                return pipeline.run(
                    config, client=client, store=store, channel=files, now=now, day=now.date(),
                    only=only,
                )  # fmt: skip
        return pipeline.run(
            config, client=client, store=store, channel=channel, now=now, day=now.date()
        )


def messages_to(config: Config, address: str) -> list[str]:
    """The plain-text parts of the messages in the outbox for ``address``, oldest first."""
    import email
    import email.policy

    found = []
    for path in sorted((config.base_dir / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"].addresses[0].addr_spec == address:
            found.append((str(message["Subject"]), message.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    return [f"{subject}\n{text}".replace("\r\n", "\n") for subject, text in found]


def test_seven_daily_runs_and_one_weekly_digest_on_its_weekday(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    for day in range(7):
        (tmp_path / "today.json").write_text(json.dumps(day_papers(day)))
        report = run_day(config, client, SATURDAY + dt.timedelta(days=day))
        assert report.exit_code == 0
        weekly = next(o for o in report.outcomes if o.email == "weekly@example.org")
        assert weekly.sent == (day == 6), (day, weekly)
        if day < 6:
            assert weekly.skipped == "weekly, next on Friday"
    daily = messages_to(config, "daily@example.org")
    assert len(daily) == 7
    for day, message in enumerate(daily):
        assert f"of day {day}\n" in message
        assert message.count("Agent study") == 3  # that day's papers, never an earlier day's
    (week,) = messages_to(config, "weekly@example.org")
    subject, _, text = week.partition("\n")
    assert subject == "Daily Papers digest — Week 48 · 21 papers"
    assert "Week 48 (21\u201327 November 2026)" in text
    for day in range(7):
        for n in range(3):  # one card each (the overview names them too)
            assert text.count(f"https://huggingface.co/papers/2611.{day:02d}{n:03d}\n") == 1
            assert text.count(f"Agent study {n} of day {day}\n") == 2
    assert "new this week" in text
    # the next Friday's digest holds only what came after this one
    (tmp_path / "today.json").write_text(json.dumps(day_papers(13)))
    run_day(config, client, FRIDAY + dt.timedelta(days=7))
    later = messages_to(config, "weekly@example.org")[-1]
    assert "of day 13" in later and "of day 6" not in later


def test_an_address_refused_three_runs_in_a_row_is_suspended_then_resubscribed(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    handler = Handler(rcpt_answers={"daily@example.org": ["550 5.1.1 no such mailbox"] * 3})
    with smtp_server(handler) as server:
        settings = SmtpSettings.model_validate(
            {"host": "127.0.0.1", "port": server.port, "security": "none", "retries": 0}
        )
        channel = MailChannel(SmtpTransport(settings), MessageSettings())
        reports = []
        for day in range(4):
            (tmp_path / "today.json").write_text(json.dumps(day_papers(day)))
            reports.append(run_day(config, client, FRIDAY + dt.timedelta(days=day), channel))
            channel.close()
        tries = [o for o in reports[0].outcomes if o.email == "daily@example.org"]
        assert tries[0].error is not None and "550" in tries[0].error
        assert reports[1].suspended == ()
        assert reports[2].suspended == ("daily@example.org",)
        assert any("suspended" in line for line in reports[2].summary())
        fourth = next(o for o in reports[3].outcomes if o.email == "daily@example.org")
        assert fourth.kind == "suspended" and not fourth.error
        refused_rcpts = handler.rcpt_answers["daily@example.org"]
        assert refused_rcpts == []  # three refusals used, and no fourth attempt was made
        daily_received = [r for r in handler.received if r.rcpt_tos == ["daily@example.org"]]
        assert daily_received == []
        with SqliteStore.open(config.store_path) as store:
            state = store.subscriber_states(["daily@example.org"])["daily@example.org"]
            assert state.status == "suspended" and "550" in (state.last_error or "")
            store.set_subscriber_status("daily@example.org", "active", "test", FRIDAY)
        # resubscribed: everything owed arrives in one digest, the server accepting again
        report = run_day(config, client, FRIDAY + dt.timedelta(days=4), channel)
        channel.close()
        sent = next(o for o in report.outcomes if o.email == "daily@example.org")
        assert sent.sent and sent.papers == 12
        assert len([r for r in handler.received if r.rcpt_tos == ["daily@example.org"]]) == 1


def test_one_subscribers_digest_on_its_own_with_the_real_ledger(
    tmp_path: Path, client: httpx.Client
) -> None:
    config = make_config(tmp_path)
    (tmp_path / "today.json").write_text(json.dumps(day_papers(0)))
    report = run_day(config, client, SATURDAY, only="WEEKLY@example.org")
    assert [o.email for o in report.outcomes] == ["weekly@example.org"]
    assert report.outcomes[0].sent  # weekly, but asked for now
    assert messages_to(config, "daily@example.org") == []
    # the ledger is the real one: the next full run does not send weekly's papers again
    report = run_day(config, client, SATURDAY + dt.timedelta(hours=1), only="weekly@example.org")
    assert report.outcomes[0].skipped == (
        "The 3 papers this week that match your interests were all in earlier digests."
    )
    full = run_day(config, client, SATURDAY + dt.timedelta(hours=2))
    daily = next(o for o in full.outcomes if o.email == "daily@example.org")
    assert daily.sent and daily.papers == 3


def test_send_empty_mails_each_reader_at_most_once_a_day(tmp_path: Path) -> None:
    import email
    import email.policy
    import shutil
    import subprocess
    import sys

    shutil.copytree(SAMPLES_TEXT, tmp_path / "pages")
    config = tmp_path / "digest.toml"
    config.write_text(
        '[digest]\nsend_empty = true\n[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "D <d@example.org>"\n'
        '[[subscribers]]\nemail = "real@example.org"\nkeywords = ["tensor"]\n'
        '[[subscribers]]\nemail = "none@example.org"\nkeywords = ["zzyzx-nothing-matches"]\n'
        '[[subscribers]]\nemail = "weekly@example.org"\nkeywords = ["zzyzx-nothing"]\n'
        'frequency = "weekly"\nweekday = "monday"\n',
        encoding="utf-8",
    )
    day = "2026-11-02"  # a Monday
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(config), "run", "--date", day],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    sent: dict[str, list[str]] = {}
    for path in (tmp_path / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        sent.setdefault(str(message["To"]), []).append(str(message["Subject"]))
    assert sorted(sent) == ["none@example.org", "real@example.org", "weekly@example.org"]
    assert all(len(subjects) == 1 for subjects in sent.values()), sent
