""" "Big this week" through a week of runs of the library core on real API days: the week's most
upvoted papers a reader has not had, whatever their interests, marked as such, recorded as
delivered, and never a paper the reader already received."""

from __future__ import annotations

import datetime as dt
import email
import re
import shutil
from collections import Counter
from email.message import EmailMessage
from email.policy import default
from functools import partial
from pathlib import Path

from digest import Digest
from digest.config import load_config

HF = Path(__file__).resolve().parent / "fixtures" / "samples" / "hf"
DAYS = ["api_2025-10-06.json", "api_2024-03-21.json", "api_2025-03-24.json",
        "api_2026-07-31_limit30.json", "api_2025-10-06.json"]  # fmt: skip
MONDAY = dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.UTC)
READERS = (
    '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\ntrending = 3\n'
    '[[subscribers]]\nemail = "bob@example.org"\nkeywords = ["agent"]\n'
)


def at(now: dt.datetime) -> dt.datetime:
    return now


def run_week(folder: Path, readers: str = READERS) -> None:
    path = folder / "digest.toml"
    path.write_text(
        '[[sources]]\nkind = "page"\npath = "today.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        + readers
    )
    for n, sample in enumerate(DAYS):
        shutil.copy(HF / sample, folder / "today.json")
        now = MONDAY + dt.timedelta(days=n)
        report = Digest(load_config(path), clock=partial(at, now)).run(day=now.date())
        assert report.exit_code == 0


def mails_to(folder: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in (folder / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        if message["To"].addresses[0].addr_spec == address:
            found.append(message)
    return sorted(found, key=lambda m: m["Date"].datetime)


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def ids(html: str) -> list[str]:
    """The papers of each card (its title link), in order."""
    return re.findall(r'<a class="paper-link" href="https://huggingface.co/papers/([\d.]+)"', html)


def test_big_this_week_never_offers_a_paper_already_received(tmp_path: Path) -> None:
    run_week(tmp_path)
    received: Counter[str] = Counter()
    trending_seen = 0
    for message in mails_to(tmp_path, "ada@example.org"):
        html = html_of(message)
        main, _, trending = html.partition("Big this week</p>")
        for paper in ids(main) + ids(trending):
            assert received[paper] == 0, f"{paper} received twice"
            received[paper] += 1
        if trending:
            assert len(ids(trending)) <= 3
            assert "One of this week&#39;s most upvoted papers" in trending
            trending_seen += len(ids(trending))
    assert trending_seen >= 6  # the section was there, day after day
    # bob (no `trending`) never has the section
    assert all("Big this week" not in html_of(m) for m in mails_to(tmp_path, "bob@example.org"))


def test_the_first_day_adds_the_most_upvoted_papers_outside_the_interests(
    tmp_path: Path,
) -> None:
    run_week(tmp_path)
    first = mails_to(tmp_path, "ada@example.org")[0]
    html = html_of(first)
    main, _, trending = html.partition("Big this week</p>")
    # the three most upvoted papers of 2025-10-06 that do not mention agents (16, 10, 8 upvotes)
    assert ids(trending) == ["2510.00515", "2510.01068", "2510.02665"]
    assert len(ids(main)) == 7
    text = first.get_body(("plain",))
    assert text is not None
    assert "Big this week: the week's most upvoted papers you have not had" in text.get_content()
    assert str(first["Subject"]).endswith("10 new papers")
