"""Building one subscriber's digest as a MIME message whose headers nothing can inject into, and
the mail channels that hand such messages to a transport.

The message is ``multipart/alternative`` (plain text first, HTML last, both UTF-8) under
``email.policy.SMTP``. Every header value that comes from configuration or from sources is
checked for line breaks here, even where ``config.py`` already checked, because a header is the
last place an injection can be stopped. Addresses follow the one rule of
:mod:`digest.addresses`, the same ``digest check`` applies.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import functools
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Protocol
from urllib.parse import quote

from digest.addresses import parse_mailbox, wire_address
from digest.deliver import MessageSettings
from digest.errors import PermanentDeliveryError
from digest.models import Rendered, Subscriber
from digest.untrusted import clip, has_line_break, strip_controls

_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_URI_IN_HEADER = re.compile(r"^[!#-;=?-\[\]_a-z~]+$")  # printable ASCII minus space " < > \ ^ `
_PHRASE_SPECIALS = re.compile(r"[^\w\s'!&+-]")

MAX_NAME = 78
# Values of these headers are lists of <URI>s or a msg-id: the default folder would turn a long
# URI into RFC 2047 encoded-words, which mail clients then cannot follow, so they are folded here
# only between list items.
_VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "message-id"})


class _DigestPolicy(EmailPolicy):
    """``email.policy.SMTP``, except that URI-list headers are never encoded, only folded."""

    def fold(self, name: str, value: str) -> str:
        folded = self._fold_verbatim(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self._fold_verbatim(name, value)
        return folded.encode("ascii") if folded is not None else super().fold_binary(name, value)

    def fold_header(self, name: str, value: str) -> str:
        """``name: value`` folded for the wire (7bit: non-ASCII as RFC 2047 encoded words)."""
        folded = self._fold_verbatim(name, value)
        if folded is not None:
            return folded
        header = self.header_factory(name, value)
        return str(header.fold(policy=self))

    def _fold_verbatim(self, name: str, value: str) -> str | None:
        text = str(value)
        if name.lower() not in _VERBATIM_HEADERS or not text.isascii():
            return None
        return f"{name}: " + f",{self.linesep} ".join(text.split(", ")) + self.linesep


# 7bit: non-ASCII bodies go out quoted-printable or base64, so no relay needs 8BITMIME
POLICY = _DigestPolicy(linesep="\r\n", cte_type="7bit")


def build_message(
    rendered: Rendered,
    subscriber: Subscriber,
    settings: MessageSettings,
    *,
    now: dt.datetime,
    message_id: str | None = None,
) -> EmailMessage:
    """One subscriber's digest, ready for any transport.

    ``message_id`` (without angle brackets, ``local@domain``) makes a resend of the same digest
    carry the same Message-ID; by default a fresh one is made. Raises ``PermanentDeliveryError``
    (``where`` names the config field or the subscriber) when a header value contains a line
    break or an address is unusable: retrying cannot fix those.
    """
    title = settings.title
    delivery = settings
    sender = sender_address(delivery.sender)
    recipient = recipient_address(
        subscriber.name, subscriber.email, where=f"subscribers[{subscriber.email}]"
    )
    subject = one_line(rendered.subject, where=f"subject for {subscriber.email}")

    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(
        # a naive clock is taken as UTC rather than sent as the ambiguous "-0000"
        now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    )
    message["Message-ID"] = (
        f"<{one_line(message_id, where='message id')}>"
        if message_id
        else email.utils.make_msgid(domain=sender.domain)
    )
    if delivery.reply_to:
        message["Reply-To"] = sender_address(delivery.reply_to, where="delivery.reply_to")
    message["List-Id"] = list_id_header(delivery.list_id, title, sender.domain)
    unsubscribe = unsubscribe_uris(delivery, subscriber.email)
    if unsubscribe:
        message["List-Unsubscribe"] = ", ".join(f"<{uri}>" for uri in unsubscribe)
        if one_click(delivery, unsubscribe):
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for file in rendered.attachments:
        maintype, subtype = file.content_type.split("/", 1)
        assert maintype == "text", "only text attachments are made"
        message.add_attachment(file.text, subtype=subtype, charset="utf-8", filename=file.filename)
    _drop_inner_mime_versions(message)
    return message


def _drop_inner_mime_versions(message: EmailMessage) -> None:
    """make_alternative() and make_mixed() copy MIME-Version into the parts; it belongs on top."""
    for part in message.iter_parts():
        del part["MIME-Version"]
        if part.is_multipart():
            assert isinstance(part, EmailMessage)
            _drop_inner_mime_versions(part)


def one_line(value: str, *, where: str) -> str:
    """``value`` when it holds no line break, even in an encoded-word; PermanentDeliveryError
    (an injection) otherwise."""
    if has_line_break(value):
        raise PermanentDeliveryError(
            f"line break in {value!r} would inject a mail header",
            where=where,
            hint="remove the line break (each header value must be one line)",
        )
    return value


def sender_address(value: str, *, where: str = "delivery.from") -> Address:
    one_line(value, where=where)
    try:
        name, addr = parse_mailbox(value)
    except ValueError as exc:
        raise PermanentDeliveryError(
            str(exc),
            where=where,
            hint='write it as "Name <address@example.org>" or just address@example.org; '
            "fix the config",
        ) from None
    return recipient_address(name, addr, where=where)


def recipient_address(name: str, addr: str, *, where: str) -> Address:
    """``name <addr>`` as a header Address; PermanentDeliveryError when it cannot be sent."""
    one_line(name, where=where)
    one_line(addr, where=where)
    try:
        wire = wire_address(addr)  # non-ASCII domains go on the wire as IDNA (punycode)
    except ValueError as exc:
        raise PermanentDeliveryError(
            str(exc), where=where, hint="use an ASCII local@domain.example address; fix the config"
        ) from None
    local, domain = wire.rsplit("@", 1)
    # A display name is a courtesy: a 200 KB one would only make every relay refuse the header.
    return Address(display_name=clip(strip_controls(name), MAX_NAME), username=local, domain=domain)


def list_id_header(configured: str | None, title: str, domain: str) -> str:
    """The List-Id value: the configured label, else one made of the title and domain."""
    if configured:
        one_line(configured, where="delivery.list_id")
        label = configured.strip()
        if "<" in label:
            return label
        if not _DOT_ATOM.match(label):
            raise PermanentDeliveryError(
                f"{configured!r} is not a list label",
                where="delivery.list_id",
                hint='use a dotted label such as "papers.example.org"',
            )
        return f"<{label}>"
    slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:60].strip("-") or "digest"
    # the description is cosmetic: keep only characters a phrase may hold without quoting
    phrase = " ".join(_PHRASE_SPECIALS.sub(" ", one_line(title, where="digest.title")).split())
    return f"{phrase} <{slug}.{domain}>" if phrase else f"<{slug}.{domain}>"


def unsubscribe_uris(delivery: MessageSettings, email_address: str) -> list[str]:
    """The List-Unsubscribe URIs for one subscriber: the ``mailto:``, then the page (the one
    ``digest serve`` answers, or the operator's ``unsubscribe_url``)."""
    uris: list[str] = []
    for field, template in (
        ("delivery.unsubscribe_mailto", delivery.unsubscribe_mailto),
        ("delivery.unsubscribe_url", delivery.unsubscribe_url),
    ):
        if not template:
            continue
        uri = one_line(template, where=field).replace("{email}", quote(email_address, safe="@"))
        if not _URI_IN_HEADER.match(uri):
            raise PermanentDeliveryError(
                f"{uri!r} has characters a header URI cannot carry",
                where=field,
                hint="percent-encode spaces, quotes, <, > and non-ASCII characters",
            )
        uris.append(uri)
    if delivery.links is not None:
        uris.append(delivery.links.url_for(email_address))  # base64url: safe in a header
    return uris


def one_click(delivery: MessageSettings, uris: list[str]) -> bool:
    """Whether the message offers RFC 8058 one-click: a page that accepts the POST (https, or
    the local ``http://`` address of ``digest serve`` being tried out)."""
    return delivery.links is not None or any(uri.startswith("https://") for uri in uris)


@dataclass(frozen=True)
class WireMessage:
    """A message as it goes on the wire: its bytes (CRLF), envelope and Message-ID."""

    data: bytes
    sender: str
    recipients: tuple[str, ...]
    message_id: str

    @classmethod
    def of(cls, message: EmailMessage) -> WireMessage:
        """The wire form of a built message."""
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        sender = message["From"].addresses[0].addr_spec if message["From"] else ""
        recipients = tuple(a.addr_spec for a in message["To"].addresses) if message["To"] else ()
        return cls(data, sender, recipients, str(message.get("Message-ID", "")))

    def parsed(self) -> EmailMessage:
        """The message read back (for tests and tools)."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class Transport(Protocol):
    """Where built messages go. ``send`` returns only when the message was accepted; ``flush``
    makes the accepted ones durable (an SMTP server already has them: nothing to do);
    ``parallel`` is how many ``send`` calls it takes at once, from as many threads."""

    @property
    def parallel(self) -> int: ...

    def send(self, message: WireMessage) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def message_id_for(digest_id: str, settings: MessageSettings) -> str:
    """``digest.<id>@<sender domain>`` for a digest id (empty for none)."""
    if not digest_id:
        return ""
    domain = _sender_domain(settings.sender)
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", digest_id)
    return f"digest.{safe}@{domain}"


@functools.lru_cache(maxsize=64)
def _sender_domain(sender: str) -> str:
    return sender_address(sender).domain
