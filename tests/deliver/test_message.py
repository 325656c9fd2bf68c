"""The built MIME message: structure, headers, encodings, and every way to inject a header."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import pytest

from digest.config import subscriber_from
from digest.deliver import MessageSettings
from digest.deliver.message import build_message
from digest.errors import PermanentDeliveryError
from digest.models import Rendered, Subscriber

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "deliver"
NOW = dt.datetime(2025, 3, 24, 7, 30, 15, tzinfo=dt.UTC)
RENDERED = Rendered(
    subject="Daily Papers digest — 24 Mar 2025 — 2 papers",
    html=(FIXTURES / "digest.html").read_text(encoding="utf-8"),
    text=(FIXTURES / "digest.txt").read_text(encoding="utf-8"),
    paper_keys=("2403.12345", "2403.54321"),
)


def delivery(**values: Any) -> MessageSettings:
    """The message settings of a ``[delivery]`` table with these keys (``from`` included)."""
    values.setdefault("from", "Paper Digest <digest@papers.example.org>")
    values["sender"] = values.pop("from")
    return MessageSettings(**values)


def subscriber(email_address: str = "ada@example.org", name: str = "Ada Lovelace") -> Subscriber:
    return subscriber_from({"email": email_address, "name": name})


def unchecked(email_address: str, name: str) -> Subscriber:
    """A subscriber the config would refuse: the message builder is the last line."""
    return Subscriber(email=email_address, name=name)


def build(
    *,
    rendered: Rendered = RENDERED,
    to: Subscriber | None = None,
    via: MessageSettings | None = None,
    title: str = "Daily Papers digest",
) -> EmailMessage:
    settings = via or delivery()
    if title != settings.title:
        settings = MessageSettings(**{**settings.__dict__, "title": title})
    return build_message(rendered, to or subscriber(), settings, now=NOW)


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(part: MIMEPart) -> str:
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


# --- the message ---------------------------------------------------------------------------


def test_structure_is_alternative_with_text_first_and_html_last() -> None:
    parsed = reparse(build())
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert body(parts[0]) == RENDERED.text
    assert body(parts[1]) == RENDERED.html
    assert "Ünïcödé" in body(parts[1])  # the fixture's non-ASCII survives the round trip


def test_wire_form_is_7bit_with_crlf_and_short_lines() -> None:
    raw = build().as_bytes()
    assert raw.isascii()  # no relay needs 8BITMIME
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines)  # every line ends in CRLF
    assert max(len(line) for line in lines) <= 998  # RFC 5322 hard limit


def test_headers() -> None:
    message = build(via=delivery(reply_to="Help Desk <help@example.org>"))
    parsed = reparse(message)
    assert parsed["From"] == "Paper Digest <digest@papers.example.org>"
    assert parsed["To"] == "Ada Lovelace <ada@example.org>"
    assert parsed["Reply-To"] == "Help Desk <help@example.org>"
    assert parsed["Subject"] == RENDERED.subject
    assert parsed["Date"].datetime == NOW
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["List-Id"] == "Daily Papers digest <daily-papers-digest.papers.example.org>"
    assert parsed["List-Unsubscribe"] is None and parsed["List-Unsubscribe-Post"] is None
    for part in parsed.iter_parts():
        assert part["MIME-Version"] is None


def test_message_id_is_unique_and_on_the_senders_domain() -> None:
    ids = {str(reparse(build())["Message-ID"]) for _ in range(20)}
    assert len(ids) == 20
    for value in ids:
        assert value.startswith("<") and value.endswith("@papers.example.org>")


def test_naive_clock_is_taken_as_utc() -> None:
    message = build_message(
        RENDERED, subscriber(), delivery(title="T"), now=NOW.replace(tzinfo=None)
    )
    assert message["Date"] == "Mon, 24 Mar 2025 07:30:15 +0000"


def test_configured_list_id() -> None:
    assert build(via=delivery(list_id="ml.example.org"))["List-Id"] == "<ml.example.org>"
    named = build(via=delivery(list_id="ML digest <ml.example.org>"))
    assert named["List-Id"] == "ML digest <ml.example.org>"
    with pytest.raises(PermanentDeliveryError) as caught:
        build(via=delivery(list_id="not a label"))
    assert caught.value.where == "delivery.list_id"


def test_list_id_derived_from_an_awkward_title_stays_a_valid_phrase() -> None:
    parsed = reparse(build(title='Lab "news": papers <weekly>, Zürich'))
    assert (
        parsed["List-Id"]
        == "Lab news papers weekly Zürich <lab-news-papers-weekly-z-rich.papers.example.org>"
    )


def test_list_unsubscribe_mailto_only_has_no_one_click() -> None:
    parsed = reparse(
        build(via=delivery(unsubscribe_mailto="mailto:leave@example.org?subject={email}"))
    )
    assert parsed["List-Unsubscribe"] == "<mailto:leave@example.org?subject=ada@example.org>"
    assert parsed["List-Unsubscribe-Post"] is None


def test_list_unsubscribe_https_gets_one_click_and_the_address_is_url_quoted() -> None:
    long_url = "https://papers.example.org/lists/daily/unsubscribe/one-click?token=0123456789abcdef&email={email}"
    via = delivery(unsubscribe_mailto="mailto:leave@example.org", unsubscribe_url=long_url)
    message = build(to=subscriber("ada+ml&x@example.org"), via=via)
    parsed = reparse(message)
    expected_url = long_url.replace("{email}", "ada%2Bml%26x@example.org")
    assert parsed["List-Unsubscribe"] == f"<mailto:leave@example.org>, <{expected_url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # a long URI is folded between list items, never turned into an encoded-word
    assert (
        b"=?"
        not in message.as_bytes().split(b"List-Unsubscribe-Post")[0].split(b"List-Unsubscribe:")[1]
    )


def test_unsubscribe_url_with_characters_a_header_cannot_carry_is_refused() -> None:
    via = delivery(unsubscribe_url="https://example.org/u?e={email}&x=a b")
    with pytest.raises(PermanentDeliveryError) as caught:
        build(via=via)
    assert caught.value.where == "delivery.unsubscribe_url"


def test_non_ascii_names_are_rfc2047_encoded() -> None:
    message = build(
        to=subscriber("zoe@example.org", "Zoë Ñúñez, Jr."),
        via=delivery(**{"from": "Papiers du jour — Zürich <digest@papers.example.org>"}),
    )
    raw = message.as_bytes()
    to_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"To:"))
    assert b"=?utf-8?" in to_line and b"<zoe@example.org>" in to_line
    parsed = reparse(message)
    assert parsed["To"].addresses[0].display_name == "Zoë Ñúñez, Jr."
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.org"
    assert parsed["From"].addresses[0].display_name == "Papiers du jour — Zürich"


def test_non_ascii_domain_goes_out_as_punycode() -> None:
    parsed = reparse(build(to=subscriber("ada@bücher.example")))
    assert parsed["To"].addresses[0].addr_spec == "ada@xn--bcher-kva.example"


def test_non_ascii_local_part_is_refused() -> None:
    # bypass config validation, which would accept it: the builder is the last line
    sub = unchecked("zoë@example.org", "Zoë")
    with pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
        build(to=sub)


INJECTIONS = [
    "Eve\r\nBcc: victim@example.org",
    "Eve\nBcc: victim@example.org",
    "Eve\rBcc: victim@example.org",
    "Eve\u2028Bcc: victim@example.org",
    "Eve\x0bBcc: victim@example.org",
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_line_breaks_in_the_recipient_name_are_refused(name: str) -> None:
    # model_construct: the config would refuse some of these; the builder must refuse all
    sub = unchecked("eve@example.org", name)
    with pytest.raises(PermanentDeliveryError) as caught:
        build(to=sub)
    assert caught.value.where == "subscribers[eve@example.org]"
    assert caught.value.hint


@pytest.mark.parametrize("subject", [s.replace("Eve", "Digest") for s in INJECTIONS])
def test_line_breaks_in_the_subject_are_refused(subject: str) -> None:
    rendered = RENDERED.model_copy(update={"subject": subject})
    with pytest.raises(PermanentDeliveryError) as caught:
        build(rendered=rendered)
    assert "ada@example.org" in (caught.value.where or "")


@pytest.mark.parametrize("field", ["sender", "reply_to"])
def test_line_breaks_in_from_and_reply_to_are_refused(field: str) -> None:
    via = MessageSettings(**{**delivery().__dict__, field: "Eve <eve@example.org>\r\nBcc: x@y.org"})
    with pytest.raises(PermanentDeliveryError) as caught:
        build(via=via)
    assert caught.value.where == ("delivery.from" if field == "sender" else "delivery.reply_to")


def test_an_address_smuggled_into_the_email_field_is_refused() -> None:
    sub = unchecked("eve@example.org>, <victim@example.org", "")
    with pytest.raises(PermanentDeliveryError):
        build(to=sub)


def test_unparseable_sender_is_refused() -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        build(via=delivery(**{"from": "Paper Digest"}))
    assert caught.value.where == "delivery.from"


def test_untrusted_text_in_the_body_cannot_add_headers() -> None:
    hostile = "Title\r\nBcc: victim@example.org\r\n\r\nmore"
    parsed = reparse(build(rendered=RENDERED.model_copy(update={"text": hostile, "html": hostile})))
    assert parsed["Bcc"] is None
    plain = parsed.get_body(("plain",))
    assert plain is not None and body(plain).rstrip("\n") == hostile.replace("\r\n", "\n")
