"""Monthly digests through 62 daily runs of the library core: a reader of ``day = 31`` gets
exactly two messages (31 January, 28 February), each paper once; a day the machine was off is
caught up on the next run; a due day with nothing to send is not retried the day after."""

from __future__ import annotations

import datetime as dt
import email
import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from digest import Digest
from digest.cadence import due_day, latest_due, previous_due
from digest.config import load_config
from digest.errors import ConfigError
from digest.render.views import month_period

FIRST = dt.datetime(2026, 1, 1, 7, 0, tzinfo=dt.UTC)


def write_day(folder: Path, day: dt.date, count: int = 2, topic: str = "agent") -> list[str]:
    ids = [f"26{day.month:02d}.{day.day:02d}{n:03d}" for n in range(count)]
    entries = [
        {"paper": {"id": i, "title": f"An {topic} study {i}", "summary": f"About {topic}s.",
                   "upvotes": 1}}
        for i in ids
    ]  # fmt: skip
    (folder / "today.json").write_text(json.dumps(entries))
    return ids


def config_in(folder: Path, reader: str, digest: str = "") -> Path:
    path = folder / "digest.toml"
    path.write_text(
        f"[digest]\nmax_html_bytes = 400000\n{digest}"
        '[[sources]]\nkind = "page"\npath = "today.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        '[[subscribers]]\nemail = "daily@example.org"\nkeywords = ["agent"]\nmax_papers = 5\n'
        + reader
    )
    return path


MONTHLY = (
    '[[subscribers]]\nemail = "monthly@example.org"\nkeywords = ["agent"]\nmax_papers = 200\n'
    'frequency = "monthly"\nday = 31\n'
)


def messages_to(folder: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in (folder / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        if message["To"].addresses[0].addr_spec == address:
            found.append(message)
    return sorted(found, key=lambda m: m["Date"].datetime)


def papers_in(message: EmailMessage) -> set[str]:
    part = message.get_body(("html",))
    assert part is not None
    return set(
        re.findall(r'href="https://huggingface.co/papers/(\d{4}\.\d{5})"', part.get_content())
    )


def clock_at(now: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: now


def run_days(folder: Path, config: Path, days: int, *, skip: tuple[dt.date, ...] = ()) -> list[str]:
    shown = []
    for n in range(days):
        now = FIRST + dt.timedelta(days=n)
        if now.date() in skip:
            continue
        shown += write_day(folder, now.date())
        report = Digest(load_config(config), clock=clock_at(now)).run(day=now.date())
        assert report.exit_code == 0, list(report.problems())
    return shown


def test_sixty_two_days_bring_two_messages_on_the_right_days_each_paper_once(
    tmp_path: Path,
) -> None:
    shown = run_days(tmp_path, config_in(tmp_path, MONTHLY), 62)  # 1 January to 3 March
    january, february = messages_to(tmp_path, "monthly@example.org")
    assert january["Date"].datetime.date() == dt.date(2026, 1, 31)
    assert february["Date"].datetime.date() == dt.date(2026, 2, 28)
    in_january, in_february = papers_in(january), papers_in(february)
    assert in_january == {i for i in shown if i.startswith("2601.")}
    assert in_february == {i for i in shown if i.startswith("2602.")}
    assert str(january["Subject"]) == "Daily Papers digest — January 2026 · 62 papers"
    text = january.get_body(("plain",))
    assert text is not None
    assert "January 2026 (1\u201331 January 2026)" in text.get_content()
    assert "62 new this month" in text.get_content()
    assert len(messages_to(tmp_path, "daily@example.org")) == 62


def test_a_due_day_the_machine_was_off_is_caught_up_by_the_next_run(tmp_path: Path) -> None:
    off = dt.date(2026, 2, 28)
    shown = run_days(tmp_path, config_in(tmp_path, MONTHLY), 60, skip=(off,))  # to 1 March
    january, february = messages_to(tmp_path, "monthly@example.org")
    assert february["Date"].datetime.date() == dt.date(2026, 3, 1)
    assert papers_in(february) == {i for i in shown if not i.startswith("2601.")}
    assert not papers_in(january) & papers_in(february)


def test_a_due_day_with_nothing_to_send_is_not_retried_the_day_after(tmp_path: Path) -> None:
    reader = MONTHLY.replace('keywords = ["agent"]', 'keywords = ["zymurgy"]')
    config = config_in(tmp_path, reader)
    run_days(tmp_path, config, 31)  # to 31 January: nothing matched, nothing sent
    assert messages_to(tmp_path, "monthly@example.org") == []
    now = FIRST + dt.timedelta(days=31)  # 1 February: a zymurgy paper
    write_day(tmp_path, now.date(), topic="zymurgy")
    report = Digest(load_config(config), clock=lambda: now).run(day=now.date())
    assert messages_to(tmp_path, "monthly@example.org") == []
    (outcome,) = [o for o in report.outcomes if o.email == "monthly@example.org"]
    assert outcome.skipped == "monthly, next on 2026-02-28"


def test_day_without_monthly_is_a_config_error(tmp_path: Path) -> None:
    path = config_in(tmp_path, '[[subscribers]]\nemail = "x@example.org"\nday = 3\n')
    with pytest.raises(
        ConfigError, match='day applies to monthly digests; add frequency = "monthly"'
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("day", "dom", "latest", "previous"),
    [
        (dt.date(2026, 2, 28), 31, dt.date(2026, 2, 28), dt.date(2026, 1, 31)),
        (dt.date(2026, 3, 30), 31, dt.date(2026, 2, 28), dt.date(2026, 2, 28)),
        (dt.date(2024, 2, 29), 30, dt.date(2024, 2, 29), dt.date(2024, 1, 30)),
        (dt.date(2026, 1, 1), 1, dt.date(2026, 1, 1), dt.date(2025, 12, 1)),
    ],
)
def test_the_due_day_of_a_short_month_is_its_last(
    day: dt.date, dom: int, latest: dt.date, previous: dt.date
) -> None:
    assert latest_due(day, dom) == latest
    assert previous_due(day, dom) == previous
    assert due_day(day.year, day.month, dom) >= latest


def test_a_monthly_heading_names_the_month_most_of_its_days_are_in() -> None:
    assert month_period(dt.date(2026, 12, 1), 1) == (
        "November 2026",
        "2 November \u2013 1 December 2026",
    )
    assert month_period(dt.date(2026, 1, 31), 31) == ("January 2026", "1\u201331 January 2026")
    assert month_period(dt.date(2026, 1, 15), 15) == (
        "December 2025",
        "16 December 2025 \u2013 15 January 2026",
    )
