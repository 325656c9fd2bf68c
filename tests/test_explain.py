"""An empty digest says why, through the library core's runs and previews on real API days: the
sources listed nothing, a source failed, nothing was new, everything matched was sent before, or
nothing matched (with the closest papers and what kept each out)."""

from __future__ import annotations

import datetime as dt
import email
import json
import shutil
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from digest import Digest
from digest.config import Config, load_config
from digest.report import RunReport

HF = Path(__file__).resolve().parent / "fixtures" / "samples" / "hf"
DAY = dt.date(2025, 10, 6)
MORNING = dt.datetime(2025, 10, 6, 7, 0, tzinfo=dt.UTC)


def setup(folder: Path, subscribers: str, *, source: str = "today.json", extra: str = "") -> Config:
    shutil.copy(HF / "api_2025-10-06.json", folder / "today.json")
    path = folder / "digest.toml"
    path.write_text(
        f"[digest]\nsend_empty = true\n{extra}"
        f'[[sources]]\nkind = "page"\npath = "{source}"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        + subscribers
    )
    return load_config(path)


def run(config: Config, at: dt.datetime = MORNING) -> RunReport:
    return Digest(config, clock=lambda: at).run(day=at.date())


def summary(report: RunReport) -> str:
    return "\n".join(report.summary())


def mails(folder: Path) -> list[EmailMessage]:
    found = []
    for path in sorted((folder / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


READER = '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\n'


def test_a_day_the_sources_list_nothing_says_so(tmp_path: Path) -> None:
    config = setup(tmp_path, READER)
    (tmp_path / "today.json").write_text("[]")
    report = run(config)
    (message,) = mails(tmp_path)
    line = "The sources listed no papers today (a weekend or a holiday, most likely)."
    assert line in " ".join(text_of(message).split())
    assert line in html_of(message)
    assert f"ada@example.org: 0 matched, sent 0: {line}" in summary(report)


def test_a_failed_source_is_named_and_its_papers_promised_for_later(tmp_path: Path) -> None:
    shutil.copy(HF / "bad_2024-12-11_repr_strings.json", tmp_path / "bad.json")
    config = setup(tmp_path, READER, source="bad.json")
    report = run(config)
    assert report.exit_code == 1
    (message,) = mails(tmp_path)
    line = "No papers today: a source could not be read; their papers will come in a later digest."
    assert line in " ".join(text_of(message).split())
    assert "One of the sources could not be read this time" in html_of(message)
    assert f"sent 0: {line}" in summary(report)


def test_a_short_day_with_a_failed_source_says_what_it_may_lack(tmp_path: Path) -> None:
    shutil.copy(HF / "bad_2024-12-11_repr_strings.json", tmp_path / "bad.json")
    config = setup(tmp_path, READER, source="*.json")
    run(config)
    (message,) = mails(tmp_path)
    assert "Agent" in message["Subject"] or "agent" in text_of(message).lower()
    assert "One of the sources could not be read this time; its papers will come in a later" in (
        html_of(message)
    )


def test_papers_all_seen_on_earlier_days_are_nothing_new(tmp_path: Path) -> None:
    config = setup(tmp_path, READER)
    run(config)
    later = MORNING + dt.timedelta(days=5)  # the same listing, past the lookback window
    report = run(config, later)
    newest = mails(tmp_path)[-1]
    line = "The sources listed 16 papers today, all seen on earlier days: nothing new to offer."
    assert line in " ".join(text_of(newest).split())
    assert f"sent 0: {line}" in summary(report)


def test_everything_matched_already_sent_says_so_in_the_preview_and_the_summary(
    tmp_path: Path,
) -> None:
    config = setup(tmp_path, READER)
    first = run(config)
    assert "ada@example.org: 7 matched, sent 7" in summary(first)
    again = run(config, MORNING + dt.timedelta(hours=3))
    line = "The 7 papers today that match your interests were all in earlier digests."
    assert f"ada@example.org: 0 matched, not sent: {line}" in summary(again)
    result = Digest(config, clock=lambda: MORNING + dt.timedelta(hours=4)).preview(
        tmp_path / "preview", day=DAY
    )
    ((_, rendered),) = result.emails
    assert line in " ".join(rendered.text.split())
    assert line in (tmp_path / "preview" / "index.html").read_text()


def test_nothing_matched_names_the_closest_papers_and_the_exclude_word(tmp_path: Path) -> None:
    config = setup(
        tmp_path,
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["web agents"]\n'
        'exclude = ["benchmark*", "context"]\n',
    )
    report = run(config)
    (message,) = mails(tmp_path)
    text = " ".join(text_of(message).split())
    assert "16 new papers today; none matched your interests." in text
    assert "Closest papers:" in text
    # the two papers about web agents, and the word of `exclude` each mentions
    assert (
        "FocusAgent: Simple Yet Effective Ways of Trimming the Large Context of Web Agents" in text
    )
    assert "It mentions “context” and “benchmark*”, which you exclude." in text
    assert "WAInjectBench: Benchmarking Prompt Injection Detections for Web Agents" in text
    assert "It mentions “benchmark*”, which you exclude." in text
    assert "https://huggingface.co/papers/2510.03204" in html_of(message)
    assert "16 new papers today; none matched your interests." in summary(report)


def test_nothing_matched_names_min_upvotes_and_a_missing_require_word(tmp_path: Path) -> None:
    config = setup(
        tmp_path,
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["survey*"]\n'
        'min_upvotes = 6\nrequire = ["agents"]\n',
    )
    run(config)
    (message,) = mails(tmp_path)
    text = " ".join(text_of(message).split())
    # SurveyBench (5 upvotes) mentions agents; the survey of self-improvement (8) does not
    assert "It has 5 upvotes, below your min_upvotes of 6" in text
    assert "It does not mention “agents”, which you require" in text


def test_an_about_reader_sees_how_close_the_closest_papers_came(tmp_path: Path) -> None:
    similarity = 0.995  # the closest paper of the day is in the top 0.97 % of recent papers
    config = setup(
        tmp_path,
        '[[subscribers]]\nemail = "ada@example.org"\n'
        'about = ["robot grasping with tactile sensors"]\n'
        f"min_similarity = {similarity}\n",
    )
    run(config)
    (message,) = mails(tmp_path)
    text = " ".join(text_of(message).split())
    assert "none matched your interests" in text
    assert "Compose Your Policies!" in text.split("Closest papers:")[1]
    assert f"your min_similarity of {similarity} asks for the top 0.5%" in text
    assert "Its closeness to “robot grasping with tactile sensors” is in the top 0.97%" in text


def test_source_text_in_a_near_miss_is_escaped(tmp_path: Path) -> None:
    config = setup(
        tmp_path,
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\nexclude = ["x"]\n',
    )
    entries = [{"paper": {"id": "2510.99999", "title": "<script>x</script> agent", "upvotes": 1}}]
    (tmp_path / "today.json").write_text(json.dumps(entries))
    run(config)
    (message,) = mails(tmp_path)
    html = html_of(message)
    assert "<script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt; agent" in html
