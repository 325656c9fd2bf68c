"""The digest's message built straight as bytes, from parts shared by the whole run.

:func:`digest.deliver.message.build_message` builds an ``EmailMessage`` and serialises it: at ten
thousand digests that is most of a run (header objects parsed on assignment, pure-Python
quoted-printable, a generator walking the tree). :class:`WireBuilder` writes the same message
directly: the headers that never change in a run (From, Reply-To, List-Id, Date, the MIME
skeleton) are folded once by the same policy, a subject is folded once per distinct subject,
and the two bodies are encoded by ``binascii``'s quoted-printable in C. What it writes parses
back to the same headers and bodies as ``build_message`` (``tests/deliver/test_wire.py``), and
it keeps ``build_message``'s guarantees: the same checks refuse line breaks and bad addresses
(so no header can be injected), long headers are folded, non-ASCII words are encoded.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.utils
import re
import secrets
from functools import lru_cache

from digest.deliver import MessageSettings
from digest.deliver.message import (
    POLICY,
    WireMessage,
    list_id_header,
    one_click,
    one_line,
    recipient_address,
    sender_address,
    unsubscribe_uris,
)
from digest.models import Attachment, Rendered, Subscriber

_MAX_LINE = 990  # SMTP allows 998 characters a line; a few to spare
# A display name made of these needs neither quoting nor encoding, and fits one line.
# ("=" and "?" are left out: "=?...?=" in a name could pass for an encoded word.)
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9 !#$%&'*+/^_`{|}~-]{0,60}$")


def _fold(name: str, value: str) -> str:
    return POLICY.fold_header(name, value)


@lru_cache(maxsize=4096)
def _subject(value: str) -> str:
    return _fold("Subject", value)


def _text_body(text: str, boundary: str) -> bytes:
    # Quoted-printable keeps the message 7bit (no relay needs 8BITMIME) and stays readable. It
    # encodes each line on its own, so lines met before (a paper's abstract is in every digest
    # that lists it) are encoded once: the text is mostly such lines.
    lines = text.split("\n")
    cache = _QP_LINES
    if len(cache) > _QP_CACHED:
        cache.clear()
    out = []
    for line in lines:
        encoded = cache.get(line)
        if encoded is None:
            qp = binascii.b2a_qp(line.encode("utf-8"), istext=True)
            encoded = cache[line] = qp.replace(b"\n", b"\r\n")  # its soft line breaks
        out.append(encoded)
    return _part(boundary, "plain", "quoted-printable", b"\r\n".join(out))


_QP_LINES: dict[str, bytes] = {}
_QP_CACHED = 200_000  # lines kept: a run's abstracts and headings


def _html_body(html: str, boundary: str) -> bytes:
    """The HTML part as plain 7bit: non-ASCII as character references (what a browser reads
    the same), lines kept under SMTP's 998 by breaking long text runs at a space between words
    (whitespace in HTML text, so nothing changes on screen). Several times cheaper than
    quoted-printable, which would also turn every ``=`` of every attribute into ``=3D``."""
    data = html.replace("\r\n", "\n").encode("ascii", "xmlcharrefreplace")
    if b"\r" in data or b"\0" in data:  # not a text a template makes: encode it as it is
        encoded = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
        return _part(boundary, "html", "quoted-printable", encoded)
    lines = data.split(b"\n")
    if max(map(len, lines)) <= _MAX_LINE:  # the usual case
        return _part(boundary, "html", "7bit", data.replace(b"\n", b"\r\n"))
    for index in [i for i, line in enumerate(lines) if len(line) > _MAX_LINE][::-1]:
        lines[index : index + 1] = _broken(lines[index])
    if max(map(len, lines)) > _MAX_LINE:
        # text with no space to break at (CJK, a long URL): quoted-printable's soft line breaks
        # keep every line within SMTP's limit without changing a character of the page
        encoded = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
        return _part(boundary, "html", "quoted-printable", encoded)
    return _part(boundary, "html", "7bit", b"\r\n".join(lines))


def _broken(line: bytes) -> list[bytes]:
    """``line`` cut at spaces outside tags into pieces no longer than :data:`_MAX_LINE`."""
    pieces: list[bytes] = []
    while len(line) > _MAX_LINE:
        cut = _space_outside_tags(line, _MAX_LINE)
        if cut <= 0:
            break  # no such space (one enormous word or tag): the caller encodes the part
        pieces.append(line[:cut])
        line = line[cut + 1 :]
    pieces.append(line)
    return pieces


def _space_outside_tags(line: bytes, limit: int) -> int:
    """The position of the last space before ``limit`` that is in text, not inside a tag."""
    position = line.rfind(b" ", 0, limit)
    while position > 0 and line.rfind(b"<", 0, position) > line.rfind(b">", 0, position):
        position = line.rfind(b" ", 0, line.rfind(b"<", 0, position))
    return position


def _part(boundary: str, subtype: str, encoding: str, body: bytes) -> bytes:
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    head = (
        f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + body


class WireBuilder:
    """Builds the wire form of each digest of one run (one clock reading, one sender)."""

    def __init__(self, settings: MessageSettings, now: dt.datetime) -> None:
        self.settings = settings
        sender = sender_address(settings.sender)
        self.sender = sender.addr_spec
        self.domain = sender.domain
        moment = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
        parts = [_fold("From", str(sender)), _fold("Date", email.utils.format_datetime(moment))]
        if settings.reply_to:
            reply = sender_address(settings.reply_to, where="delivery.reply_to")
            parts.append(_fold("Reply-To", str(reply)))
        parts.append(
            _fold("List-Id", list_id_header(settings.list_id, settings.title, self.domain))
        )
        parts.append("Auto-Submitted: auto-generated\r\n")
        self._common = "".join(parts)
        # "==" never occurs in quoted-printable output ("=" is always "=3D" or a soft break),
        # and a line of the HTML part starting "--==digest-" would need the template to write
        # a random 16-digit token it cannot know: the boundary appears in neither body.
        self._boundary = f"==digest-{secrets.token_hex(8)}=="

    def build(
        self, rendered: Rendered, subscriber: Subscriber, message_id: str | None
    ) -> WireMessage:
        """The message of ``rendered`` for ``subscriber`` (a fresh Message-ID without one)."""
        recipient = recipient_address(
            subscriber.name, subscriber.email, where=f"subscribers[{subscriber.email}]"
        )
        subject = one_line(rendered.subject, where=f"subject for {subscriber.email}")
        ident = (
            f"<{one_line(message_id, where='message id')}>"
            if message_id
            else email.utils.make_msgid(domain=self.domain)
        )
        name = recipient.display_name
        if _PLAIN_NAME.match(name) and name == name.strip():
            to = (
                f"To: {name} <{recipient.addr_spec}>\r\n"
                if name
                else f"To: {recipient.addr_spec}\r\n"
            )
        else:
            to = _fold("To", str(recipient))
        headers = [self._common, to, _subject(subject), f"Message-ID: {ident}\r\n"]
        uris = unsubscribe_uris(self.settings, subscriber.email)
        if uris:
            headers.append(_fold("List-Unsubscribe", ", ".join(f"<{uri}>" for uri in uris)))
            if one_click(self.settings, uris):
                headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        boundary = self._boundary
        alternative = f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        bodies = [
            _text_body(rendered.text, boundary),
            b"\r\n",
            _html_body(rendered.html, boundary),
            b"\r\n",
            f"--{boundary}--\r\n".encode("ascii"),
        ]
        if rendered.attachments:
            # the two views of the digest, then its files: multipart/mixed around the rest
            mixed = f"{boundary[:-2]}-mixed=="
            headers.append(
                f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{mixed}"\r\n'
            )
            bodies = [
                f"--{mixed}\r\n{alternative}\r\n".encode("ascii"),
                *bodies,
                *(_attachment(mixed, file) for file in rendered.attachments),
                f"--{mixed}--\r\n".encode("ascii"),
            ]
        else:
            headers.append(f"MIME-Version: 1.0\r\n{alternative}")
        data = b"".join(["".join(headers).encode("ascii"), b"\r\n", *bodies])
        return WireMessage(data, self.sender, (recipient.addr_spec,), ident)


def _attachment(boundary: str, file: Attachment) -> bytes:
    """One attached file, base64 in lines of 76 (any relay passes it unchanged)."""
    data = file.text.encode("utf-8")
    lines = [binascii.b2a_base64(data[i : i + 57], newline=False) for i in range(0, len(data), 57)]
    head = (
        f"\r\n--{boundary}\r\n"
        f'Content-Type: {file.content_type}; charset="utf-8"; name="{file.filename}"\r\n'
        f'Content-Disposition: attachment; filename="{file.filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode("ascii") + b"\r\n".join(lines) + b"\r\n"
