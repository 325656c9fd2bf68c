"""The file and maildir transports: atomic, parseable; a digest's file is named by the digest
(sent again, it replaces itself), and no other message ever replaces another."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.config import load_config
from digest.deliver import MessageSettings
from digest.deliver.files import FileTransport, MaildirTransport
from digest.deliver.mail import MailChannel
from digest.deliver.message import WireMessage, build_message, message_id_for
from digest.errors import TemporaryDeliveryError
from digest.stage_settings import open_configured_channel

from .test_message import NOW, RENDERED, body, build, subscriber


def wire(message: EmailMessage) -> WireMessage:
    return WireMessage.of(message)


def digest_message(
    day: str, email_address: str = "ada@example.org", *, at: dt.datetime = NOW
) -> WireMessage:
    """The message of a digest, as the pipeline names it (its Message-ID from the digest id)."""
    settings = MessageSettings(sender="Paper Digest <digest@papers.example.org>")
    message_id = message_id_for(f"{day}.0123456789ab", settings)
    return wire(
        build_message(RENDERED, subscriber(email_address), settings, now=at, message_id=message_id)
    )


# --- file transport ------------------------------------------------------------------------


class StoppedClock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def test_file_transport_writes_parseable_eml_named_by_time_and_recipient(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    clock = StoppedClock(NOW)
    with FileTransport(outbox, clock=clock) as transport:
        first = build()
        transport.send(wire(first))
        clock.at = NOW + dt.timedelta(seconds=1)
        transport.send(wire(build(to=subscriber("bob@example.org", "Bob"))))
    names = sorted(p.name for p in outbox.iterdir())
    assert len(names) == 2
    assert names[0].startswith("20250324T073015.000000Z-ada-at-example.org-")
    assert names[1].startswith("20250324T073016.000000Z-bob-at-example.org-")
    assert all(name.endswith(".eml") for name in names)
    data = (outbox / names[0]).read_bytes()
    assert data == wire(first).data
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Message-ID"] == first["Message-ID"]


def test_other_messages_never_overwrite_each_other_even_with_a_stopped_clock(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    message = wire(build())
    with FileTransport(outbox, clock=StoppedClock(NOW)) as transport:
        for _ in range(3):  # same time, same recipient, same Message-ID: the worst case
            transport.send(message)
        for i in range(50):
            transport.send(wire(build(to=subscriber(f"r{i}@example.org"))))
    files = list(outbox.iterdir())
    assert len(files) == 53
    assert all(f.read_bytes() == message.data for f in files if "-ada-at-" in f.name)


def test_a_digest_sent_again_replaces_its_own_file(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with FileTransport(outbox) as transport:
        transport.send(digest_message("20251006"))
        again = digest_message("20251006", at=NOW + dt.timedelta(days=1))  # after a crash
        transport.send(again)
        transport.send(digest_message("20251007"))  # the next digest: a file of its own
        transport.send(digest_message("20251006", "bob@example.org"))
    names = sorted(p.name for p in outbox.iterdir())
    assert len(names) == 3
    assert names[0].startswith("20251006-ada-at-example.org-")
    assert (outbox / names[0]).read_bytes() == again.data


def test_file_transport_leaves_no_temporary_files(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with FileTransport(outbox) as transport:
        for i in range(10):
            transport.send(wire(build(to=subscriber(f"r{i}@example.org"))))
    assert sorted(p.suffix for p in outbox.iterdir()) == [".eml"] * 10
    assert not [p for p in outbox.iterdir() if p.name.startswith(".")]


def test_file_transport_failure_is_temporary(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    transport = FileTransport(outbox)
    outbox.rmdir()
    outbox.write_text("a file where the outbox folder was")
    with pytest.raises(TemporaryDeliveryError) as caught:
        transport.send(wire(build()))
    assert caught.value.where == str(outbox)
    assert caught.value.hint


def test_open_transport_file_resolves_the_outbox_next_to_the_config(tmp_path: Path) -> None:
    config_path = tmp_path / "conf" / "digest.toml"
    config_path.parent.mkdir()
    config_path.write_text('[delivery]\nmethod = "file"\noutbox = "out"\n')
    config = load_config(config_path)
    with open_configured_channel(config) as channel:
        assert isinstance(channel, MailChannel)
        channel.transport.send(wire(build()))
    assert len(list((tmp_path / "conf" / "out").glob("*.eml"))) == 1


# --- maildir transport ---------------------------------------------------------------------


def test_maildir_transport_creates_the_maildir_and_delivers_into_new(tmp_path: Path) -> None:
    config_path = tmp_path / "digest.toml"
    config_path.write_text(f'[delivery]\nmethod = "maildir"\nmaildir = "{tmp_path / "Mail"}"\n')
    config = load_config(config_path)
    sent = [build(to=subscriber(f"r{i}@example.org")) for i in range(3)]
    with open_configured_channel(config) as channel:
        assert isinstance(channel, MailChannel)
        assert isinstance(channel.transport, MaildirTransport)
        for message in sent:
            channel.transport.send(wire(message))
    assert sorted(p.name for p in (tmp_path / "Mail").iterdir()) == ["cur", "new", "tmp"]
    assert len(list((tmp_path / "Mail" / "new").iterdir())) == 3
    assert list((tmp_path / "Mail" / "tmp").iterdir()) == []
    box = mailbox.Maildir(tmp_path / "Mail", create=False)
    got = sorted(str(m["Message-ID"]) for m in box)
    assert got == sorted(str(m["Message-ID"]) for m in sent)
    one = next(iter(box))
    parsed = email.message_from_bytes(one.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    plain = parsed.get_body(("plain",))
    assert plain is not None and body(plain) == RENDERED.text


def test_a_digest_delivered_again_into_a_maildir_replaces_itself(tmp_path: Path) -> None:
    with MaildirTransport(tmp_path / "Mail") as transport:
        transport.send(digest_message("20251006"))
        transport.send(digest_message("20251006", at=NOW + dt.timedelta(days=1)))
        transport.send(digest_message("20251007"))
    assert len(list((tmp_path / "Mail" / "new").iterdir())) == 2
    box = mailbox.Maildir(tmp_path / "Mail", create=False)
    assert all(m.get_payload() for m in box)
