"""The SMTP transport against a real aiosmtpd server: reuse, TLS, AUTH, 4xx/5xx, drops."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest.config import Config, config_schema, subscriber_from
from digest.deliver import MessageSettings
from digest.deliver.mail import MailChannel
from digest.deliver.message import WireMessage, build_message
from digest.deliver.smtp import SmtpSettings, SmtpTransport
from digest.errors import (
    ChannelUnavailableError,
    ConfigError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from digest.models import Rendered
from digest.stage_settings import open_configured_channel
from tests.smtp_server import Handler, free_port, smtp_server

NOW = dt.datetime(2025, 3, 24, 7, 0, tzinfo=dt.UTC)
DELIVERY = MessageSettings(sender="Paper Digest <digest@example.org>")


def message_for(address: str, subject: str = "Daily Papers digest") -> WireMessage:
    rendered = Rendered(
        subject=f"{subject} for {address}",
        html=f"<p>papers for {address}</p>",
        text=f"papers for {address}\n",
    )
    section = subscriber_from({"email": address, "name": "Reader Ünïcode"})
    return WireMessage.of(build_message(rendered, section, DELIVERY, now=NOW))


def smtp_settings(port: int, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "port": port, "security": "none"}
    values.update(overrides)
    return SmtpSettings.model_validate(values)


def config_of(data: dict[str, object]) -> Config:
    return config_schema().model_validate(data)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def handler() -> Iterator[Handler]:
    yield Handler()


def test_several_messages_go_over_one_connection(handler: Handler) -> None:
    addresses = [f"reader{i}@example.org" for i in range(5)]
    with smtp_server(handler) as server:
        with SmtpTransport(smtp_settings(server.port), sleep=Sleeps()) as transport:
            for address in addresses:
                transport.send(message_for(address))
        assert server.connections == 1
    assert [r.rcpt_tos for r in handler.received] == [[a] for a in addresses]
    assert len({r.peer for r in handler.received}) == 1
    first = handler.received[0]
    assert first.mail_from == "digest@example.org"
    assert first.message["Subject"] == "Daily Papers digest for reader0@example.org"
    assert first.message["To"].addresses[0].display_name == "Reader Ünïcode"
    plain = first.message.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n") == "papers for reader0@example.org\n"


def test_starttls_with_a_test_ca_and_login(
    handler: Handler, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, auth_data: object
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"digest" and auth_data.password == b"s3cret pass"
        return AuthResult(success=ok, handled=False)

    with smtp_server(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    ) as server:
        config = config_of(
            {
                "delivery": {
                    "method": "smtp",
                    "from": "Paper Digest <digest@example.org>",
                    "smtp": {
                        "host": "127.0.0.1",
                        "port": server.port,
                        "security": "starttls",
                        "username": "digest",
                        "password_env": "TEST_SMTP_PASSWORD",
                    },
                }
            }
        )
        env = {"TEST_SMTP_PASSWORD": "s3cret pass"}
        with open_configured_channel(config, env=env, ssl_context=client_tls) as channel:
            assert isinstance(channel, MailChannel)
            channel.transport.send(message_for("ada@example.org"))
            channel.transport.send(message_for("bob@example.org"))
        assert server.connections == 1
    assert logins == [(b"digest", b"s3cret pass")]
    assert [r.rcpt_tos for r in handler.received] == [["ada@example.org"], ["bob@example.org"]]


def test_wrong_password_is_the_channel_down_and_later_sends_fail_fast(
    handler: Handler, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    def refuse(*args: object) -> AuthResult:
        return AuthResult(success=False, handled=False)

    with smtp_server(
        handler, tls_context=server_tls, authenticator=refuse, auth_require_tls=True
    ) as server:
        settings = smtp_settings(server.port, security="starttls", username="digest")
        sleeps = Sleeps()
        transport = SmtpTransport(settings, password="wrong", ssl_context=client_tls, sleep=sleeps)
        with transport, pytest.raises(ChannelUnavailableError) as first:
            transport.send(message_for("ada@example.org"))
        assert "535" in first.value.message and "DIGEST_SMTP_PASSWORD" in (first.value.hint or "")
        with pytest.raises(ChannelUnavailableError, match="not tried"):
            transport.send(message_for("bob@example.org"))
        assert server.connections == 1
    assert sleeps == [] and handler.received == []


def test_untrusted_certificate_is_refused(handler: Handler, server_tls: ssl.SSLContext) -> None:
    with smtp_server(handler, tls_context=server_tls) as server:
        transport = SmtpTransport(
            smtp_settings(server.port, security="starttls"),
            ssl_context=ssl.create_default_context(),  # system CAs only: the test CA is unknown
            sleep=Sleeps(),
        )
        with transport, pytest.raises(ChannelUnavailableError, match="not trusted"):
            transport.send(message_for("ada@example.org"))
    assert handler.received == []


def test_implicit_tls(
    handler: Handler, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    with smtp_server(handler, ssl_context=server_tls) as server:
        settings = smtp_settings(server.port, security="ssl")
        with SmtpTransport(settings, ssl_context=client_tls, sleep=Sleeps()) as transport:
            transport.send(message_for("ada@example.org"))
    assert [r.rcpt_tos for r in handler.received] == [["ada@example.org"]]


def test_451_is_retried_then_temporary_and_550_is_permanent_others_delivered() -> None:
    handler = Handler(
        rcpt_answers={
            "busy@example.org": ["451 4.3.0 mailbox busy, try later"] * 10,
            "gone@example.org": ["550 5.1.1 no such user"],
            "flaky@example.org": ["451 4.7.1 greylisted"],
        }
    )
    sleeps = Sleeps()
    outcomes: dict[str, str] = {}
    with smtp_server(handler) as server:
        with SmtpTransport(smtp_settings(server.port, retries=2), sleep=sleeps) as transport:
            for name in ("first", "busy", "second", "gone", "flaky", "last"):
                address = f"{name}@example.org"
                try:
                    transport.send(message_for(address))
                    outcomes[name] = "sent"
                except TemporaryDeliveryError as exc:
                    outcomes[name] = f"temporary: {exc}"
                except PermanentDeliveryError as exc:
                    outcomes[name] = f"permanent: {exc}"
        assert server.connections == 1
    assert outcomes["busy"].startswith("temporary") and "451" in outcomes["busy"]
    assert "after 3 attempts" in outcomes["busy"]
    assert outcomes["gone"].startswith("permanent") and "550" in outcomes["gone"]
    delivered = [r.rcpt_tos[0] for r in handler.received]
    assert delivered == [
        "first@example.org",
        "second@example.org",
        "flaky@example.org",
        "last@example.org",
    ]
    # busy: 2 backoffs before giving up; flaky: 1 before succeeding; gone: none
    assert sleeps == [1.0, 2.0, 1.0]
    assert handler.rcpt_answers["busy@example.org"] == ["451 4.3.0 mailbox busy, try later"] * 7


def test_4xx_after_data_is_retried_and_delivered_once() -> None:
    handler = Handler(data_answers=["452 4.3.1 insufficient storage"])
    with (
        smtp_server(handler) as server,
        SmtpTransport(smtp_settings(server.port), sleep=Sleeps()) as transport,
    ):
        transport.send(message_for("ada@example.org"))
    assert handler.data_commands == 2
    assert [r.rcpt_tos for r in handler.received] == [["ada@example.org"]]


def test_421_closes_and_the_next_attempt_reconnects() -> None:
    handler = Handler(rcpt_answers={"ada@example.org": ["421 4.3.2 shutting down"]})
    with (
        smtp_server(handler) as server,
        SmtpTransport(smtp_settings(server.port), sleep=Sleeps()) as transport,
    ):
        transport.send(message_for("ada@example.org"))
        assert transport.connections == 2
    assert [r.rcpt_tos for r in handler.received] == [["ada@example.org"]]


def test_a_dropped_connection_is_reopened(handler: Handler) -> None:
    with smtp_server(handler) as server:
        with SmtpTransport(smtp_settings(server.port), sleep=Sleeps()) as transport:
            transport.send(message_for("ada@example.org"))
            server.drop_connections()
            transport.send(message_for("bob@example.org"))
            transport.send(message_for("cy@example.org"))
        assert server.connections == 2
    peers = [r.peer for r in handler.received]
    assert peers[0] != peers[1] == peers[2]
    assert [r.rcpt_tos[0] for r in handler.received] == [
        "ada@example.org",
        "bob@example.org",
        "cy@example.org",
    ]


def test_connection_refused_is_the_channel_down_with_host_port_and_stops_retrying() -> None:
    port = free_port()  # nothing listens there
    sleeps = Sleeps()
    transport = SmtpTransport(smtp_settings(port, retries=2), sleep=sleeps)
    with transport, pytest.raises(ChannelUnavailableError) as caught:
        transport.send(message_for("ada@example.org"))
    assert caught.value.where == f"127.0.0.1:{port}"
    assert "cannot connect" in caught.value.message and caught.value.hint
    assert sleeps == [1.0, 2.0]
    with pytest.raises(ChannelUnavailableError, match="not tried"):
        transport.send(message_for("bob@example.org"))
    assert sleeps == [1.0, 2.0]


def test_unknown_host_is_the_channel_down_and_names_the_host() -> None:
    settings = smtp_settings(2525, host="mail.nonexistent.invalid", retries=0)
    transport = SmtpTransport(settings, sleep=Sleeps())
    with transport, pytest.raises(ChannelUnavailableError) as caught:
        transport.send(message_for("ada@example.org"))
    assert caught.value.where == "mail.nonexistent.invalid:2525"
    assert "cannot resolve" in caught.value.message


def test_missing_password_variable_is_a_config_error_before_connecting(tmp_path: Path) -> None:
    config = config_of(
        {
            "delivery": {
                "method": "smtp",
                "smtp": {"host": "127.0.0.1", "port": free_port(), "username": "digest"},
            }
        }
    )
    with pytest.raises(ConfigError) as caught:
        open_configured_channel(config, env={})
    assert "DIGEST_SMTP_PASSWORD" in caught.value.message
    assert caught.value.where == "delivery.smtp.password_env"


def test_the_failure_budget_counts_failures_since_the_last_message_that_went_through() -> None:
    from digest.deliver.smtp import FailureBudget

    now = [0.0]
    budget = FailureBudget(10.0, clock=lambda: now[0])
    budget.spend(7.0)
    assert budget.left() == 3.0
    budget.refill()  # a message was accepted: the server works
    budget.spend(7.0)
    assert budget.left() == 3.0  # 14 s of failures in all, but never 10 in a row
    budget.spend(5.0)
    assert budget.left() == 0.0


def test_greylisted_addresses_between_accepted_ones_never_pass_for_a_dead_server(
    handler: Handler,
) -> None:
    greylisted = [f"grey{n}@example.org" for n in range(5)]
    handler.rcpt_answers = {
        address: ["451 4.7.1 greylisted, try later"] * 2 for address in greylisted
    }
    with smtp_server(handler) as server:
        settings = smtp_settings(server.port, retries=1, give_up_after=2.5)
        transport = SmtpTransport(settings, sleep=Sleeps())  # each retry waits 1 s of budget
        with transport:
            for address in greylisted:
                with pytest.raises(TemporaryDeliveryError, match="451"):
                    transport.send(message_for(address))
                transport.send(message_for(address.replace("grey", "fine")))  # goes through
        assert transport.broken is None  # 5 s of 451s in all, never 2.5 s in a row
    assert len(handler.received) == len(greylisted)
