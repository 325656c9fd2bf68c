"""A broken mail server is never a reader's fault: `digest run` against real local servers that
are misconfigured, dripping or refusing one address, as an operator would meet them."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from digest.store.sqlite import SqliteStore
from tests.smtp_server import Handler, Received, smtp_server
from tests.test_deadlines import Dripper

PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"
READERS = {
    "ada@example.org": "tensor",
    "bob@example.org": "folding",
    "dee@example.org": "embedding",
    "eve@example.org": "scalability",
}
DAY = dt.date(2026, 11, 2)


def write_config(folder: Path, port: int, *, security: str = "none", smtp_extra: str = "") -> Path:
    if not (folder / "pages").exists():
        shutil.copytree(PAGES, folder / "pages")
    text = (
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "smtp"\nfrom = "Digest <digest@example.org>"\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
        + smtp_extra
    )
    for address, keyword in READERS.items():
        text += (
            f'[[subscribers]]\nemail = "{address}"\nkeywords = ["{keyword}"]\nmax_papers = 500\n'
        )
    path = folder / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=config.parent,
    )


def run_on(config: Path, day: dt.date) -> subprocess.CompletedProcess[str]:
    """`digest run` as cron runs it on ``day``."""
    return run(config, "run", "--date", str(day))


def titles_by_reader(received: list[Received]) -> dict[str, set[str]]:
    """Each reader's papers, by the titles that head the cards of the text part."""
    found: dict[str, set[str]] = defaultdict(set)
    for item in received:
        text = item.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found[item.rcpt_tos[0]] |= set(re.findall(r"^ ?\d+\.\s+(.+)$", text, re.M))
    return dict(found)


def bounce_counts(folder: Path) -> dict[str, tuple[str, int]]:
    with SqliteStore.open(folder / "digest.db", readonly=True) as store:
        return {a: (s.status, s.bounces) for a, s in store.subscriber_states().items()}


def reference(tmp_path: Path) -> dict[str, set[str]]:
    """What every reader gets from a good server on the first day."""
    handler = Handler()
    folder = tmp_path / "reference"
    folder.mkdir()
    with smtp_server(handler) as server:
        done = run_on(write_config(folder, server.port), DAY)
    assert done.returncode == 0, done.stderr
    want = titles_by_reader(handler.received)
    assert set(want) == set(READERS)
    return want


def test_starttls_asked_of_a_server_without_it_suspends_nobody(tmp_path: Path) -> None:
    want = reference(tmp_path)
    handler = Handler()
    with smtp_server(handler) as server:
        broken = write_config(tmp_path, server.port, security="starttls")
        for offset in range(4):
            done = run_on(broken, DAY + dt.timedelta(days=offset))
            assert done.returncode == 1, done.stdout
            (line,) = [ln for ln in done.stderr.splitlines() if "channel is unavailable" in ln]
            assert "nothing was sent" in line and "STARTTLS" in line
            assert "4 digests stay owed" in line and "Traceback" not in done.stderr
            assert all(status == ("active", 0) for status in bounce_counts(tmp_path).values())
        assert handler.received == []
        listed = run(broken, "subscribers", "list").stdout
        assert "suspended" not in listed
        fixed = write_config(tmp_path, server.port, security="none")
        done = run_on(fixed, DAY + dt.timedelta(days=4))
    assert done.returncode == 0, done.stderr
    assert titles_by_reader(handler.received) == want  # every owed paper, to every reader


@pytest.mark.slow
@pytest.mark.parametrize("pause", [1.0, 3600.0], ids=["dripping", "never-greets"])
def test_a_dripping_greeting_holds_a_run_well_under_a_minute_and_bounces_nobody(
    tmp_path: Path, pause: float
) -> None:
    want = reference(tmp_path)
    greeting = Dripper(b"220 slow.example ESMTP\r\n", read_first=False, pause=pause)
    try:
        started = time.monotonic()
        done = run_on(write_config(tmp_path, greeting.port), DAY)  # default settings
        took = time.monotonic() - started
    finally:
        greeting.close()
    assert done.returncode == 1 and took < 90, (took, done.stdout)
    assert "nothing was sent" in done.stderr and "refused the message" not in done.stderr
    # one session, or a second within the same budget when the first met the socket timeout
    assert 1 <= greeting.connections <= 2
    assert all(status == ("active", 0) for status in bounce_counts(tmp_path).values())
    handler = Handler()
    with smtp_server(handler) as server:
        done = run_on(write_config(tmp_path, server.port), DAY + dt.timedelta(days=1))
    assert done.returncode == 0, done.stderr
    assert titles_by_reader(handler.received) == want


def test_an_address_refused_on_rcpt_three_runs_in_a_row_suspends_only_that_reader(
    tmp_path: Path,
) -> None:
    handler = Handler(rcpt_answers={"dee@example.org": ["550 5.1.1 no such mailbox"] * 3})
    with smtp_server(handler) as server:
        config = write_config(tmp_path, server.port)
        for offset in range(3):
            done = run_on(config, DAY + dt.timedelta(days=offset))
            assert done.returncode == 1
    states = bounce_counts(tmp_path)
    assert states["dee@example.org"][0] == "suspended"
    assert {a: s for a, (s, _) in states.items() if a != "dee@example.org"} == {
        a: "active" for a in READERS if a != "dee@example.org"
    }
    listed = run(config, "subscribers", "list").stdout
    (dee,) = [line for line in listed.splitlines() if "dee@example.org" in line]
    assert "suspended" in dee and "550" in dee


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("550 5.7.1 Relaying denied", "every recipient"),
        ("530 5.7.0 Authentication required", "every recipient"),
    ],
)
def test_a_server_that_refuses_everyone_is_not_anyones_bounce(
    tmp_path: Path, reply: str, why: str
) -> None:
    handler = Handler(rcpt_answers={address: [reply] * 5 for address in READERS})
    with smtp_server(handler) as server:
        done = run_on(write_config(tmp_path, server.port), DAY)
    assert done.returncode == 1
    (line,) = [ln for ln in done.stderr.splitlines() if "channel is unavailable" in ln]
    assert why in line and reply.split()[0] in line
    assert all(status == ("active", 0) for status in bounce_counts(tmp_path).values())
    # one refusal was enough to stop: the others were not asked for
    assert sum(len(handler.rcpt_answers[a]) for a in READERS) == 5 * len(READERS) - 1


def test_every_suspended_reader_is_brought_back_at_once(tmp_path: Path) -> None:
    handler = Handler(
        rcpt_answers={
            a: ["550 5.1.1 no such mailbox"] * 2 for a in ("ada@example.org", "bob@example.org")
        }
    )
    with smtp_server(handler) as server:
        config = write_config(tmp_path, server.port)
        extra = config.read_text().replace(
            'from = "Digest <digest@example.org>"\n',
            'from = "Digest <digest@example.org>"\nsuspend_after_bounces = 2\n',
        )
        config.write_text(extra)
        for offset in range(2):
            run_on(config, DAY + dt.timedelta(days=offset))
        assert {a for a, (s, _) in bounce_counts(tmp_path).items() if s == "suspended"} == {
            "ada@example.org",
            "bob@example.org",
        }
        done = run(config, "subscribers", "resubscribe", "--suspended")
        assert done.returncode == 0, done.stderr
        assert "2 suspended subscribers are active again" in done.stdout
        assert all(status == "active" for status, _ in bounce_counts(tmp_path).values())
        both = run(config, "subscribers", "resubscribe", "--suspended", "ada@example.org")
        assert both.returncode == 2 and "one address or --suspended" in both.stderr
        done = run_on(config, DAY + dt.timedelta(days=2))
    assert done.returncode == 0, done.stderr
    assert {"ada@example.org", "bob@example.org"} <= {r.rcpt_tos[0] for r in handler.received}
