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

from tests.smtp_server import CountingController, Handler, smtp_server

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
