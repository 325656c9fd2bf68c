"""The fast wire builder writes the message ``build_message`` builds: the same headers and bodies
once parsed, 7bit with CRLF and short lines, and the same refusals of injected headers."""

from __future__ import annotations

import email
import email.policy
import html
from email.message import EmailMessage

import pytest

from digest.deliver import MessageSettings
from digest.deliver.message import build_message
from digest.deliver.wire import WireBuilder
from digest.errors import PermanentDeliveryError
from digest.models import Attachment, Rendered, Subscriber

from .test_message import INJECTIONS, NOW, RENDERED, unchecked

SETTINGS = [
    MessageSettings(sender="Paper Digest <digest@papers.example.org>"),
    MessageSettings(
        sender="Papiers du jour — Zürich <digest@papers.example.org>",
        title='Lab "news": papers <weekly>, Zürich',
        reply_to="Help Desk <help@example.org>",
        list_id="ml.example.org",
        unsubscribe_mailto="mailto:leave@example.org",
        unsubscribe_url="https://example.org/unsubscribe?email={email}&list=" + "x" * 80,
    ),
]
PEOPLE = [
    Subscriber(email="ada@example.org", name="Ada Lovelace"),
    Subscriber(email="zoe@example.org", name="Zoë Ñúñez, Jr."),
    Subscriber(email="ada+ml&x@bücher.example", name=""),
    Subscriber(email="eve@example.org", name="Eve =?utf-8?q?Mallory?="),
    Subscriber(email="long@example.org", name="A " * 30 + "very long name"),
]
SUBJECTS = [
    RENDERED.subject,
    "Plain subject",
    "Résumé: " + "a long subject with many words " * 6,
]


HEADERS = (
    *("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id"),
    *("List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted", "MIME-Version"),
)


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.mark.parametrize("settings", SETTINGS, ids=["plain", "everything"])
@pytest.mark.parametrize("person", PEOPLE, ids=lambda p: p.email)
@pytest.mark.parametrize("subject", SUBJECTS, ids=["default", "ascii", "long"])
def test_the_wire_message_reads_back_as_the_built_one(
    settings: MessageSettings, person: Subscriber, subject: str
) -> None:
    rendered = RENDERED.model_copy(update={"subject": subject})
    reference = parse(
        build_message(rendered, person, settings, now=NOW, message_id="digest.1@papers.example.org")
        .as_bytes()
    )  # fmt: skip
    wire = WireBuilder(settings, NOW).build(rendered, person, "digest.1@papers.example.org")
    fast = parse(wire.data)
    for name in HEADERS:
        assert str(fast[name]) == str(reference[name]), name
    assert text_of(fast, "plain") == text_of(reference, "plain") == RENDERED.text
    # The HTML goes out as 7bit ASCII: non-ASCII as character references, which read the same.
    as_ascii = RENDERED.html.encode("ascii", "xmlcharrefreplace").decode()
    assert text_of(fast, "html").replace("\n", " ") == as_ascii.replace("\n", " ")
    assert html.unescape(text_of(fast, "html")).split() == (
        html.unescape(text_of(reference, "html")).split()
    )
    assert wire.recipients == (reference["To"].addresses[0].addr_spec,)
    assert wire.message_id == "<digest.1@papers.example.org>"
    lines = wire.data.split(b"\r\n")
    assert wire.data.isascii() and b"\n" not in wire.data.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 998
    header = lines[: lines.index(b"")]
    # only a URI, which cannot be broken, may make a header line longer than 78
    assert all(
        len(line) <= 78 for line in header if b"<https:" not in line and b"<mailto:" not in line
    )


def test_a_fresh_message_id_is_made_without_a_digest() -> None:
    builder = WireBuilder(SETTINGS[0], NOW)
    ids = {builder.build(RENDERED, PEOPLE[0], None).message_id for _ in range(10)}
    assert len(ids) == 10 and all(i.endswith("@papers.example.org>") for i in ids)


@pytest.mark.parametrize("name", INJECTIONS)
def test_line_breaks_in_names_and_subjects_are_refused(name: str) -> None:
    builder = WireBuilder(SETTINGS[0], NOW)
    with pytest.raises(PermanentDeliveryError):
        builder.build(RENDERED, unchecked("eve@example.org", name), None)
    with pytest.raises(PermanentDeliveryError):
        builder.build(RENDERED.model_copy(update={"subject": name}), PEOPLE[0], None)


def test_untrusted_body_text_cannot_add_headers() -> None:
    hostile = "Title\r\nBcc: victim@example.org\r\n\r\nmore\n.\n"
    rendered = Rendered(subject="s", html=hostile, text=hostile)
    parsed = parse(WireBuilder(SETTINGS[0], NOW).build(rendered, PEOPLE[0], None).data)
    assert parsed["Bcc"] is None
    assert "Bcc: victim" in text_of(parsed, "plain")


def test_long_html_lines_are_broken_between_words_never_inside_a_tag() -> None:
    tag = '<mark style="background-color:#fde68a; color:#111827; padding:0 2px">'
    words = " ".join(f"{tag}word{n}</mark>" if n % 7 == 0 else f"w{n}é" for n in range(600))
    rendered = Rendered(subject="s", html=f"<p class='abstract'>{words}</p>\n", text="t")
    data = WireBuilder(SETTINGS[0], NOW).build(rendered, PEOPLE[0], None).data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    body = text_of(parse(data), "html")
    assert html.unescape(body).split() == html.unescape(rendered.html).split()  # same words
    assert all(tag in piece or "<mark" not in piece for piece in body.split("\n"))


def test_an_attached_file_reads_back_as_the_built_one() -> None:
    bib = Attachment(
        filename="papers-2025-10-06.bib",
        content_type="text/x-bibtex",
        text="@misc{zhang2025efficient,\n  title = {Zürich \\& “quotes”},\n}\n" * 40,
    )
    rendered = RENDERED.model_copy(update={"attachments": (bib,)})
    reference = parse(build_message(rendered, PEOPLE[1], SETTINGS[1], now=NOW).as_bytes())
    fast = parse(WireBuilder(SETTINGS[1], NOW).build(rendered, PEOPLE[1], None).data)
    for message in (reference, fast):
        assert message.get_content_type() == "multipart/mixed"
        assert text_of(message, "plain") == RENDERED.text
        (attached,) = list(message.iter_attachments())
        assert attached.get_filename() == "papers-2025-10-06.bib"
        assert attached.get_content_type() == "text/x-bibtex"
        assert str(attached.get_content()).replace("\r\n", "\n") == bib.text
    assert html.unescape(text_of(fast, "html")).split() == (
        html.unescape(text_of(reference, "html")).split()
    )


@pytest.mark.parametrize("name", ["../x.bib", "a b.bib", 'x".bib', "x\r\nBcc: e@x.org", ""])
def test_an_attachment_name_cannot_carry_a_header(name: str) -> None:
    with pytest.raises(ValueError, match="filename"):
        Attachment(filename=name, content_type="text/x-bibtex", text="")
