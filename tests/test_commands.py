"""Test sends from the command line against a real aiosmtpd server: ``preview --send-to`` (the
store untouched) and ``check --smtp`` with good and bad credentials; ``subscribers ...``."""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.smtp_server import CountingController, Handler, free_port, smtp_server

PAGES = Path(__file__).resolve().parent / "fixtures" / "samples" / "text-pages"
PASSWORD = "pw 123"


def write_config(folder: Path, port: int, security: str = "none") -> Path:
    if not (folder / "pages").exists():
        shutil.copytree(PAGES, folder / "pages")
    config = folder / "digest.toml"
    config.write_text(
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
        'username = "digest"\npassword_env = "TEST_SMTP_PW"\nretries = 0\ntimeout = 10\n'
        '[[subscribers]]\nemail = "ada@example.org"\nkeywords = ["tensor"]\n'
        '[[subscribers]]\nemail = "bob@example.org"\nkeywords = ["embedding"]\n'
    )
    return config


def digest(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        cwd=config.parent, env=full, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, trustme.CA]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context, ca


@pytest.fixture
def server(tls: tuple[ssl.SSLContext, trustme.CA]) -> Iterator[tuple[CountingController, Handler]]:
    def authenticator(*args: object) -> AuthResult:
        data = args[4]
        assert isinstance(data, LoginPassword)
        ok = (data.login, data.password) == (b"digest", PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    handler = Handler()
    with smtp_server(
        handler, tls_context=tls[0], require_starttls=True, authenticator=authenticator,
        auth_require_tls=True,
    ) as controller:  # fmt: skip
        yield controller, handler


def tls_env(tmp_path: Path, ca: trustme.CA, password: str) -> dict[str, str]:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return {"SSL_CERT_FILE": str(ca_file), "TEST_SMTP_PW": password}


def store_bytes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.glob("digest.db*"))
    }


def test_preview_send_to_mails_a_test_and_leaves_the_store_as_it_was(
    tmp_path: Path,
    server: tuple[CountingController, Handler],
    tls: tuple[ssl.SSLContext, trustme.CA],
) -> None:
    controller, handler = server
    config = write_config(tmp_path, controller.port, "starttls")
    env = tls_env(tmp_path, tls[1], PASSWORD)
    assert digest(config, "run", "--dry-run", env=env).returncode == 0  # the store exists
    assert digest(config, "seen", "stats", env=env).returncode == 0
    before = store_bytes(tmp_path)
    done = digest(
        config, "preview", "--subscriber", "bob@example.org", "--send-to", "me@example.net", env=env
    )
    assert done.returncode == 0, done.stderr
    assert "sent bob@example.org's preview to me@example.net" in done.stdout
    (received,) = handler.received
    assert received.rcpt_tos == ["me@example.net"]
    message = received.message
    assert str(message["Subject"]).startswith("[test] ")
    assert message["To"].addresses[0].addr_spec == "me@example.net"
    assert store_bytes(tmp_path) == before
    assert not (tmp_path / "outbox").exists()  # the configured channel was not used


def test_preview_send_to_refuses_a_bad_address_before_anything(tmp_path: Path) -> None:
    config = write_config(tmp_path, 2525)
    done = digest(config, "preview", "--send-to", "a@b.org, c@evil.org")
    assert done.returncode == 2 and "--send-to" in done.stderr
    assert not (tmp_path / "preview").exists()


def test_check_smtp_reports_the_session_and_sends_nothing(
    tmp_path: Path,
    server: tuple[CountingController, Handler],
    tls: tuple[ssl.SSLContext, trustme.CA],
) -> None:
    controller, handler = server
    config = write_config(tmp_path, controller.port, "starttls")
    done = digest(config, "check", "--smtp", env=tls_env(tmp_path, tls[1], PASSWORD))
    assert done.returncode == 0, done.stderr
    assert f"connected to 127.0.0.1:{controller.port}" in done.stdout
    assert "TLS: TLSv1." in done.stdout
    assert "login: accepted for 'digest'" in done.stdout
    assert "QUIT: 221" in done.stdout
    assert handler.received == [] and handler.mail_commands == 0


def test_check_smtp_with_a_wrong_password_is_one_line_and_exit_1(
    tmp_path: Path,
    server: tuple[CountingController, Handler],
    tls: tuple[ssl.SSLContext, trustme.CA],
) -> None:
    controller, handler = server
    config = write_config(tmp_path, controller.port, "starttls")
    done = digest(config, "check", "--smtp", env=tls_env(tmp_path, tls[1], "wrong"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("digest: error:")]
    assert len(errors) == 1 and "login refused: 535" in errors[0]
    assert "TEST_SMTP_PW" in done.stderr and "Traceback" not in done.stderr
    assert handler.received == []


def test_subscribers_list_unsubscribe_resubscribe(tmp_path: Path) -> None:
    config = write_config(tmp_path, 2525)
    assert digest(config, "run").returncode == 0
    listed = digest(config, "subscribers", "list")
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["ada@example.org"][1:3] == ["active", "day"]
    assert int(rows["ada@example.org"][4]) == 1  # one digest sent

    done = digest(config, "subscribers", "unsubscribe", "ADA@example.org")
    assert done.returncode == 0 and "unsubscribed ada@example.org" in done.stdout
    again = digest(config, "run", "-v")
    assert "ada@example.org: 0 matched, not sent: unsubscribed since" in again.stdout
    assert "(digest subscribers)" in again.stdout
    back = digest(config, "subscribers", "resubscribe", "ada@example.org")
    assert back.returncode == 0 and "was unsubscribed" in back.stdout
    statuses = digest(config, "subscribers", "list").stdout
    assert "unsubscribed" not in statuses

    unknown = digest(config, "subscribers", "unsubscribe", "nobody@example.org")
    assert unknown.returncode == 2 and "no subscriber 'nobody@example.org'" in unknown.stderr


def test_check_says_its_verdict_once_and_last(
    tmp_path: Path, server: tuple[CountingController, Handler]
) -> None:
    controller, _ = server
    config = write_config(tmp_path, controller.port)
    text = config.read_text().replace('username = "digest"\npassword_env = "TEST_SMTP_PW"\n', "")
    config.write_text(text.replace('method = "file"', 'method = "smtp"'))
    done = digest(config, "check", "--smtp")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == f"{config}: OK" and done.stdout.count("OK") == 1
    # a healthy server answers EHLO even when no STARTTLS or login asked for it
    assert f"connected to 127.0.0.1:{controller.port}: " in done.stdout
    assert "no EHLO answer" not in done.stdout
    config.write_text(
        config.read_text().replace(f"port = {controller.port}", f"port = {free_port()}")
    )
    down = digest(config, "check", "--smtp")
    assert down.returncode == 1 and "OK" not in down.stdout
    errors = [line for line in down.stderr.splitlines() if line.startswith("digest: error:")]
    assert len(errors) == 1 and "cannot connect" in errors[0]


def test_check_refuses_an_unset_smtp_password_in_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, 2525)
    config.write_text(config.read_text().replace('method = "file"', 'method = "smtp"'))
    done = digest(config, "check")
    assert done.returncode == 2 and "OK" not in done.stdout
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("digest: error:")]
    assert "$TEST_SMTP_PW is not set" in line and "Traceback" not in done.stderr


def test_check_sources_asks_the_api_once(tmp_path: Path) -> None:
    import datetime as dt

    from tests.sources.hf_server import day_of, hf_api

    config = write_config(tmp_path, 2525)
    with hf_api() as api:
        api.days[dt.date.today()] = day_of(3, dt.date.today())
        text = f'[[sources]]\nkind = "hf-api"\nurl = "{api.url}"\n' + config.read_text()
        config.write_text(text)
        done = digest(config, "check", "--sources")
        assert done.returncode == 0, done.stderr
        assert f"source {api.url}: answers" in done.stdout
        assert [q.get("limit") for q in api.queries] == ["1"]
        config.write_text(text.replace("/api/daily_papers", "/api/nothing-here"))
        wrong = digest(config, "check", "--sources")
    assert wrong.returncode == 1 and "OK" not in wrong.stdout
    assert "HTTP 404" in wrong.stderr and "can't find the page" in wrong.stderr


def test_the_unsubscribe_warning_is_for_mail_only(tmp_path: Path) -> None:
    config = write_config(tmp_path, 2525)
    mail = digest(config, "check")
    assert "no way to unsubscribe" in mail.stderr
    config.write_text(config.read_text().replace('method = "file"', 'method = "atom"'))
    feed = digest(config, "check")
    assert feed.returncode == 0, feed.stderr
    assert "unsubscribe" not in feed.stderr and "unsubscribe:" not in feed.stdout
