"""The reader's own pages of `digest serve`, from messages two real runs wrote on real API days:
"View in browser" in headless Chromium, the archive of two digests, the preferences page that
changes `about` and the cadence (the next run follows, `subscribers export` writes them),
forged and foreign tokens refused with nothing changed, and self-service turned off."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import httpx
import pytest

from tests.server.cdp import CHROMIUM, Browser
from tests.server.conftest import Site, serving
from tests.smtp_server import free_port

HF = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "hf"
DAY_ONE, DAY_TWO = "2025-03-24", "2025-10-06"


def make_site(folder: Path, *, self_service: bool = True) -> Site:
    port = free_port()
    (folder / "feeds").mkdir()
    config = folder / "digest.toml"
    config.write_text(
        '[[sources]]\nkind = "page"\npath = "feeds/*.json"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\n'
        'from = "Paper Digest <digest@example.org>"\n'
        f'[server]\nbase_url = "http://127.0.0.1:{port}"\nport = {port}\n'
        f"self_service = {'true' if self_service else 'false'}\n"
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["agent"]\n'
        '[[subscribers]]\nemail = "bob@example.org"\nkeywords = ["model"]\n'
    )
    return Site(folder, config, port)


def run_on(site: Site, sample: str, day: str) -> None:
    for old in (site.folder / "feeds").glob("*.json"):
        old.unlink()
    shutil.copy(HF / sample, site.folder / "feeds" / "today.json")
    done = site.digest("run", "--date", day)
    assert done.returncode == 0, done.stderr


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def link(message: EmailMessage, label: str) -> str:
    text = body(message, "plain")
    found = re.search(rf"^{label}: (\S+)\r?$", text, re.MULTILINE)
    assert found, f"no {label!r} line in the text part"
    return found.group(1)


@pytest.fixture
def two_days(tmp_path: Path) -> Site:
    site = make_site(tmp_path)
    run_on(site, f"api_{DAY_ONE}.json", DAY_ONE)
    run_on(site, f"api_{DAY_TWO}.json", DAY_TWO)
    return site


@pytest.fixture
def served_days(two_days: Site) -> Iterator[Site]:
    with serving(two_days):
        yield two_days


def newest_to(site: Site, address: str) -> EmailMessage:
    return site.messages()[address]


def card_titles(html: str) -> list[str]:
    found = re.findall(r'<a class="paper-link" href="[^"]+"[^>]*>([^<]+)</a>', html)
    return [unescape(title) for title in found]


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)


@needs_chromium
def test_view_in_browser_archive_and_preferences_in_chromium(
    served_days: Site, tmp_path: Path
) -> None:
    site = served_days
    message = newest_to(site, "ada@example.org")
    view = link(message, "View in browser")
    assert f'href="{view}"' in body(message, "html")
    sent_titles = card_titles(body(message, "html"))
    assert sent_titles
    with Browser(tmp_path / "profile") as browser:
        browser.open(view)  # the digest of the second day, as a page
        shown = browser.evaluate(
            "[...document.querySelectorAll('a.paper-link')].map(a => a.textContent)"
        )
        assert [" ".join(t.split()) for t in shown] == [" ".join(t.split()) for t in sent_titles]
        assert "Monday 6 October 2025" in browser.evaluate("document.body.innerText")

        browser.open(link(message, "Past digests"))
        items = browser.evaluate(
            "[...document.querySelectorAll('.digests li')].map(li => li.innerText)"
        )
        assert len(items) == 2
        assert items[0].startswith("Monday 6 October 2025 · 7 papers")
        assert items[1].startswith("Monday 24 March 2025")

        browser.open(link(message, "Change your interests"))
        assert browser.evaluate("document.querySelector('h1').textContent") == "Your digest"
        browser.evaluate(
            "document.querySelector('#about').value = 'web agents that browse for you';"
            "document.querySelector('#frequency').value = 'weekly';"
            "document.querySelector('#weekday').value = 'friday'; true"
        )
        browser.click("button")
        assert "Saved." in browser.evaluate("document.body.innerText")
        assert browser.evaluate("document.querySelector('#frequency').value") == "weekly"
        assert browser.evaluate("document.cookie") == ""

    exported = site.digest("subscribers", "export")
    assert exported.returncode == 0, exported.stderr
    ada = exported.stdout.split("[[subscribers]]")[1]
    assert 'about = ["web agents that browse for you"]' in ada
    assert 'frequency = "weekly"' in ada and 'weekday = "friday"' in ada
    assert (
        "bob@example.org" in exported.stdout
        and "frequency" not in exported.stdout.split("[[subscribers]]")[2]
    )
    listed = site.digest("subscribers", "list")
    assert "their own about, frequency, weekday (from their page)" in listed.stdout
    # the next run follows them: a weekly digest, not due on a Tuesday
    run = site.digest("run", "--date", "2025-10-07", "-v")
    assert run.returncode == 0, run.stderr
    assert "ada@example.org: 0 matched, not sent: weekly, next on Friday" in run.stdout


@needs_chromium
def test_forged_and_foreign_tokens_get_4xx_and_change_nothing(
    served_days: Site, tmp_path: Path
) -> None:
    site = served_days
    ada, bob = newest_to(site, "ada@example.org"), newest_to(site, "bob@example.org")
    ada_view, bob_view = link(ada, "View in browser"), link(bob, "View in browser")
    ada_token = ada_view.split("/d/")[1].split("/")[0]
    bob_digest = bob_view.rsplit("/", 1)[1]
    base = f"http://127.0.0.1:{site.port}"
    forged = ada_token[:-2] + ("AA" if not ada_token.endswith("AA") else "BB")
    before = site.digest("subscribers", "export").stdout
    with httpx.Client() as client:
        assert client.get(f"{base}/d/{ada_token}/{bob_digest}").status_code == 404  # bob's
        assert client.get(bob_view).status_code == 200
        for path in (f"/d/{forged}/{bob_digest}", f"/a/{forged}", f"/p/{forged}"):
            assert client.get(base + path).status_code == 403, path
        posted = client.post(f"{base}/p/{forged}", data={"keywords": "evil", "frequency": "daily"})
        assert posted.status_code == 403
        bad = client.post(f"{base}/p/{ada_token}", data={"max_papers": "many", "frequency": "x"})
        assert bad.status_code == 400
        assert "Nothing was saved" in bad.text
        huge = client.post(f"{base}/p/{ada_token}", data={"keywords": "agent " * 12_000})
        assert huge.status_code == 413
        assert site.digest("subscribers", "export").stdout == before
        with Browser(tmp_path / "profile") as browser:  # what a reader sees of a bad link
            browser.open(f"{base}/p/{forged}")
            assert "This link is not valid" in browser.evaluate("document.body.innerText")
            assert browser.evaluate("document.querySelector('form')") is None
            browser.open(f"{base}/d/{ada_token}/{bob_digest}")
            assert "No such digest" in browser.evaluate("document.body.innerText")
        hostile = client.post(
            f"{base}/p/{ada_token}", data={"keywords": "<script>alert(1)</script>"}
        )
        assert hostile.status_code == 200  # saved as a (strange) keyword, shown as text
        assert "<script>" not in hostile.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text


@needs_chromium
def test_with_self_service_off_the_page_says_so_and_saves_nothing(tmp_path: Path) -> None:
    site = make_site(tmp_path, self_service=False)
    run_on(site, f"api_{DAY_ONE}.json", DAY_ONE)
    message = newest_to(site, "ada@example.org")
    text = body(message, "plain")
    assert "Change your interests" not in text  # no page to send readers to
    token = link(message, "View in browser").split("/d/")[1].split("/")[0]
    before = site.digest("subscribers", "export").stdout
    with serving(site):
        url = f"http://127.0.0.1:{site.port}/p/{token}"
        page = httpx.get(url)
        assert page.status_code == 200
        assert "Changing your interests here is turned off" in page.text
        assert "<form" not in page.text
        posted = httpx.post(url, data={"keywords": "agent\nrobot", "frequency": "weekly"})
        assert posted.status_code == 403
        with Browser(tmp_path / "profile") as browser:
            browser.open(url)
            shown = browser.evaluate("document.body.innerText")
            assert "Changing your interests here is turned off" in shown and "agent" in shown
            assert browser.evaluate("document.querySelector('form')") is None
    assert site.digest("subscribers", "export").stdout == before


def feedback_links(message: EmailMessage) -> list[tuple[str, str]]:
    """Each card's ("More like this", "Fewer like this") links, in the order of the cards."""
    html = body(message, "html")
    more = re.findall(r'<a class="feedback-link" href="([^"]+)"[^>]*>More like this</a>', html)
    less = re.findall(r'<a class="feedback-link" href="([^"]+)"[^>]*>Fewer like this</a>', html)
    assert len(more) == len(less) == len(card_titles(html))
    return [(unescape(m), unescape(f)) for m, f in zip(more, less, strict=True)]


def verdicts_listed(site: Site, address: str) -> list[str]:
    listed = site.digest("feedback", "list", address)
    assert listed.returncode == 0, listed.stderr
    return [" ".join(line.split()[:4]) for line in listed.stdout.splitlines()]


@needs_chromium
def test_more_like_this_from_a_real_message_in_chromium(served_days: Site, tmp_path: Path) -> None:
    site = served_days
    message = newest_to(site, "ada@example.org")
    (more, _), (_, less) = feedback_links(message)[:2]
    first, second = card_titles(body(message, "html"))[:2]
    with Browser(tmp_path / "profile") as browser:
        browser.open(more)
        text = " ".join(browser.evaluate("document.body.innerText").split())
        assert "More like this?" in text and " ".join(first.split()) in text
        assert verdicts_listed(site, "ada@example.org") == []  # a GET records nothing
        browser.click("form button")
        text = browser.evaluate("document.body.innerText")
        assert "Noted: more like this." in text
        key = more.rsplit("/", 1)[1]
        assert verdicts_listed(site, "ada@example.org") == [f"{key} more like this"]
        browser.click("form button")  # undo
        assert "Taken back" in browser.evaluate("document.body.innerText")
        assert verdicts_listed(site, "ada@example.org") == []
        browser.open(less)
        assert " ".join(second.split()) in " ".join(
            browser.evaluate("document.body.innerText").split()
        )
        browser.click("form button")
        assert verdicts_listed(site, "ada@example.org") == [
            f"{less.rsplit('/', 1)[1]} fewer like this"
        ]
        assert browser.evaluate("document.cookie") == ""


def test_verdict_links_refuse_forged_foreign_and_unknown_and_record_nothing(
    served_days: Site,
) -> None:
    site = served_days
    ada, bob = newest_to(site, "ada@example.org"), newest_to(site, "bob@example.org")
    (more, _) = feedback_links(ada)[0]
    base, key = more.rsplit("/more/", 1)
    token = base.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    root = f"http://127.0.0.1:{site.port}"
    with httpx.Client() as client:
        for url in (
            f"{root}/f/{forged}/more/{key}",  # altered token
            f"{root}/f/{token[:-4]}/more/{key}",  # cut short
        ):
            assert client.get(url).status_code == 403
            assert client.post(url, data={"action": "more"}).status_code == 403
        for url in (
            f"{root}/f/{token}/more/2501.99999",  # no such paper
            f"{root}/f/{token}/lots/{key}",  # no such verdict
        ):
            assert client.get(url).status_code == 404
            assert client.post(url, data={"action": "more"}).status_code == 404
        assert client.post(more, data={"action": "delete"}).status_code == 400
        # Bob's own link is Bob's: it records for him, never for Ada.
        (bob_more, _) = feedback_links(bob)[0]
        assert client.post(bob_more, data={"action": "more"}).status_code == 200
    assert verdicts_listed(site, "ada@example.org") == []
    assert len(verdicts_listed(site, "bob@example.org")) == 1


def test_feedback_from_the_command_line_refuses_unknown_readers_and_papers(
    two_days: Site,
) -> None:
    site = two_days
    key = feedback_links(newest_to(site, "ada@example.org"))[0][0].rsplit("/", 1)[1]
    for args, named in (
        (("eve@example.org", key, "more"), "no subscriber 'eve@example.org' in the config"),
        (("ada@example.org", "2501.99999", "more"), "no paper '2501.99999' in the store"),
        (("ada@example.org", key), "give a verdict (more or less) or --clear"),
        (("ada@example.org", key, "much"), "invalid choice: 'much'"),
    ):
        done = site.digest("feedback", *args)
        assert done.returncode == 2, args
        assert named in done.stderr and "Traceback" not in done.stderr
        if "invalid choice" not in named:  # argparse's own errors come with the usage
            assert len(done.stderr.strip().splitlines()) == 2  # the error, and a hint
    assert verdicts_listed(site, "ada@example.org") == []
    done = site.digest("feedback", "ada@example.org", f"{key}v3", "less")
    assert done.returncode == 0 and "fewer like this" in done.stdout
    assert verdicts_listed(site, "ada@example.org") == [f"{key} fewer like this"]
