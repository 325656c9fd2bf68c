"""`digest run` as a subprocess against a real aiosmtpd server: the right papers to everyone,
STARTTLS + AUTH through the CLI, 451/550 per subscriber, and SIGKILL at three points of the sends.

Each paper's identity in a message is its title in the plain-text part (the sample text pages
carry no arXiv ids); which papers each subscriber should get is computed here, independently of
the matcher, from `digest fetch --json` and a whole-word search of title and abstract.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.smtp_server import CountingController, Handler, Received, smtp_server

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"

# one word each, chosen so that every subscriber has a few papers in the sample pages
INTERESTS = {
    "ada@example.org": ("Ada Lovelace", "tensor"),
    "bob@example.org": ("Bob", "folding"),
    "cy@example.org": ("Cy Ünïcode", "semantic"),
    "dee@example.org": ("Dee", "embedding"),
    "eve@example.org": ("Eve", "scalability"),
}


def write_config(folder: Path, port: int, *, smtp_extra: str = "") -> Path:
    pages = folder / "pages"
    if not pages.exists():
        shutil.copytree(SAMPLES, pages)
    text = (
        '[digest]\ntitle = "Daily Papers digest"\n'
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "smtp"\nfrom = "Paper Digest <digest@example.org>"\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f"retries = 1\ntimeout = 10\n{smtp_extra}"
    )
    for address, (name, keyword) in INTERESTS.items():
        text += (
            f'[[subscribers]]\nemail = "{address}"\nname = "{name}"\n'
            f'keywords = ["{keyword}"]\nmax_papers = 500\n'
        )
    path = folder / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def digest(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        cwd=config.parent,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def flat(text: str) -> str:
    return " ".join(text.split()).casefold()


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Subscriber -> titles they must receive, from `digest fetch --json` and a plain regex."""
    folder = tmp_path_factory.mktemp("fetch")
    config = write_config(folder, 25)
    code, out, err = finish(digest(config, "fetch", "--json"))
    assert code == 0, err
    papers = [json.loads(line) for line in out.splitlines()]
    assert len(papers) > 100
    wanted: dict[str, set[str]] = {}
    for address, (_, keyword) in INTERESTS.items():
        word = re.compile(rf"(?<![\w]){re.escape(keyword)}s?(?![\w])", re.IGNORECASE)
        wanted[address] = {
            p["title"] for p in papers if word.search(p["title"]) or word.search(p["abstract"])
        }
        assert 1 <= len(wanted[address]) <= 30, (address, len(wanted[address]))
    wanted["all"] = {p["title"] for p in papers}
    return wanted


def titles_in(received: Received, every_title: set[str]) -> set[str]:
    plain = received.message.get_body(("plain",))
    assert plain is not None
    body = flat(plain.get_content())
    return {title for title in every_title if flat(title) in body}


def check_deliveries(received: list[Received], expected: dict[str, set[str]]) -> Counter[str]:
    """Nobody missed a paper, nobody got a paper not meant for them; returns messages per
    subscriber."""
    got: dict[str, list[str]] = {address: [] for address in INTERESTS}
    per_subscriber: Counter[str] = Counter()
    for message in received:
        (address,) = message.rcpt_tos
        per_subscriber[address] += 1
        got[address].extend(titles_in(message, expected["all"]))
    for address in INTERESTS:
        assert set(got[address]) == expected[address], address
    return per_subscriber


class Killer:
    """Kills the `digest run` process from inside the SMTP server's hooks."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.ready = threading.Event()
        self.killed = False

    def attach(self, process: subprocess.Popen[str]) -> None:
        self.pid = process.pid
        self.ready.set()

    def kill(self) -> None:
        assert self.ready.wait(30)
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        self.killed = True


@pytest.fixture
def server() -> Iterator[tuple[CountingController, Handler]]:
    handler = Handler()
    with smtp_server(handler) as controller:
        yield controller, handler


def test_every_subscriber_gets_one_message_with_their_papers(
    tmp_path: Path,
    expected: dict[str, set[str]],
    server: tuple[CountingController, Handler],
) -> None:
    controller, handler = server
    config = write_config(tmp_path, controller.port)
    code, out, err = finish(digest(config, "run"))
    assert code == 0, err
    assert "sent 5 of 5 digests" in out
    per_subscriber = check_deliveries(handler.received, expected)
    assert per_subscriber == Counter({address: 1 for address in INTERESTS})
    assert controller.connections == 1  # one SMTP session for the whole run
    cy = next(r for r in handler.received if r.rcpt_tos == ["cy@example.org"])
    assert cy.message["To"].addresses[0].display_name == "Cy Ünïcode"
    assert cy.mail_from == "digest@example.org"

    # a second run has nothing new for anyone: nobody gets a paper twice
    code, out, err = finish(digest(config, "run"))
    assert code == 0, err
    assert len(handler.received) == 5


def test_starttls_and_login_through_the_cli(tmp_path: Path, expected: dict[str, set[str]]) -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def authenticator(*args: object) -> AuthResult:
        data = args[4]
        assert isinstance(data, LoginPassword)
        return AuthResult(
            success=(data.login, data.password) == (b"digest", b"pw 123"), handled=False
        )

    handler = Handler()
    with smtp_server(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    ) as controller:
        config = write_config(
            tmp_path,
            controller.port,
            smtp_extra='username = "digest"\npassword_env = "TEST_PW"\n',
        )
        config.write_text(config.read_text().replace('"none"', '"starttls"'))
        # the production code uses ssl.create_default_context(); OpenSSL reads SSL_CERT_FILE
        code, out, err = finish(
            digest(config, "run", env={"SSL_CERT_FILE": str(ca_file), "TEST_PW": "pw 123"})
        )
    assert code == 0, (out, err)
    check_deliveries(handler.received, expected)


def test_missing_password_variable_exits_2_and_sends_nothing(
    tmp_path: Path, server: tuple[CountingController, Handler]
) -> None:
    controller, handler = server
    config = write_config(
        tmp_path, controller.port, smtp_extra='username = "digest"\npassword_env = "NOPE_PW"\n'
    )
    code, _, err = finish(digest(config, "run", env={"NOPE_PW": ""}))
    assert code == 2
    assert "NOPE_PW" in err and "Traceback" not in err
    assert handler.received == [] and controller.connections == 0


def test_451_and_550_fail_only_their_subscriber_and_go_out_next_run(
    tmp_path: Path,
    expected: dict[str, set[str]],
    server: tuple[CountingController, Handler],
) -> None:
    controller, handler = server
    handler.rcpt_answers = {
        "bob@example.org": ["451 4.3.0 mailbox busy"] * 2,  # retries = 1: two attempts
        "dee@example.org": ["550 5.1.1 mailbox unavailable"],
    }
    config = write_config(tmp_path, controller.port)
    code, out, err = finish(digest(config, "run"))
    assert code == 1, (out, err)
    lines = {line.split(":")[0].strip(): line for line in out.splitlines()}
    assert "FAILED" in lines["bob@example.org"] and "451" in lines["bob@example.org"]
    assert "FAILED" in lines["dee@example.org"] and "550" in lines["dee@example.org"]
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        "ada@example.org",
        "cy@example.org",
        "eve@example.org",
    ]
    # the server takes everything now: the two who failed get their papers, nobody else anything
    code, out, err = finish(digest(config, "run"))
    assert code == 0, (out, err)
    per_subscriber = check_deliveries(handler.received, expected)
    assert per_subscriber == Counter({address: 1 for address in INTERESTS})


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that points a run at each store backend."""
    if request.param == "sqlite":
        return {}
    return {"DIGEST_STORE_URL": request.getfixturevalue("pg_url")}


@pytest.mark.parametrize("moment", ["before-any-send", "during-data", "after-accept"])
def test_sigkill_loses_nothing_and_duplicates_at_most_the_message_in_flight(
    moment: str,
    tmp_path: Path,
    expected: dict[str, set[str]],
    server: tuple[CountingController, Handler],
    store_env: dict[str, str],
) -> None:
    controller, handler = server
    killer = Killer()
    kill_at = 3  # the third message of five
    if moment == "before-any-send":
        # at the first MAIL FROM: the store already holds the papers and the first pending mark
        handler.on_mail = lambda n: killer.kill() if n == 1 else None
    elif moment == "during-data":

        def during_data(number: int) -> str | None:
            if number != kill_at:
                return None
            killer.kill()
            return "451 4.4.2 client went away"  # this server never accepted that message

        handler.on_data = during_data
    else:
        # the server has kept the message; the client dies before it reads the 250
        handler.after_accept = lambda n: killer.kill() if n == kill_at else None

    config = write_config(tmp_path, controller.port)
    first = digest(config, "run", env=store_env)
    killer.attach(first)
    code, out, err = finish(first)
    assert code == -signal.SIGKILL and killer.killed, (code, out, err)
    accepted_before = [r.rcpt_tos[0] for r in handler.received]
    assert (
        len(accepted_before) == {"before-any-send": 0, "during-data": 2, "after-accept": 3}[moment]
    )

    handler.on_mail = handler.on_data = handler.after_accept = None
    code, out, err = finish(digest(config, "run", env=store_env))
    assert code == 0, (out, err)  # the dead run's lock and store do not stop the next one

    per_subscriber = check_deliveries(handler.received, expected)  # nobody missed a paper
    duplicated = [address for address, count in per_subscriber.items() if count > 1]
    assert all(count <= 2 for count in per_subscriber.values())
    if moment == "after-accept":
        # only the message in flight may come twice: the one accepted just before the kill
        assert set(duplicated) <= {accepted_before[-1]}
    else:
        assert duplicated == []
    assert set(per_subscriber) == set(INTERESTS)


def test_a_pool_of_connections_sends_each_subscriber_once(
    tmp_path: Path,
    expected: dict[str, set[str]],
    server: tuple[CountingController, Handler],
) -> None:
    controller, handler = server
    config = write_config(tmp_path, controller.port, smtp_extra="connections = 3\n")
    code, out, err = finish(digest(config, "run"))
    assert code == 0, err
    assert "sent 5 of 5 digests" in out
    assert check_deliveries(handler.received, expected) == Counter(dict.fromkeys(INTERESTS, 1))
    assert controller.connections == 3
    # the summary keeps the configured order, whatever order the sessions finished in
    listed = [line.split(":")[0].strip() for line in out.splitlines() if "@" in line]
    assert listed == list(INTERESTS)


def test_sigkill_with_a_pool_loses_nothing_and_duplicates_only_what_was_in_flight(
    tmp_path: Path,
    expected: dict[str, set[str]],
    server: tuple[CountingController, Handler],
) -> None:
    controller, handler = server
    killer = Killer()
    handler.after_accept = lambda n: killer.kill() if n == 3 else None
    config = write_config(tmp_path, controller.port, smtp_extra="connections = 2\n")
    first = digest(config, "run")
    killer.attach(first)
    code, out, err = finish(first)
    assert code == -signal.SIGKILL and killer.killed, (code, out, err)
    accepted_before = {r.rcpt_tos[0] for r in handler.received}

    handler.after_accept = None
    code, out, err = finish(digest(config, "run"))
    assert code == 0, (out, err)
    per_subscriber = check_deliveries(handler.received, expected)
    assert set(per_subscriber) == set(INTERESTS)  # nobody missed a paper
    duplicated = {address for address, count in per_subscriber.items() if count > 1}
    assert all(count <= 2 for count in per_subscriber.values())
    assert duplicated <= accepted_before  # only digests the server had taken before the kill
    assert len(duplicated) <= 2 * 2  # at most two in flight per connection
