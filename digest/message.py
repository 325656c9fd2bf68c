"""Building one subscriber's digest as a MIME message whose headers nothing can inject into.

The message is ``multipart/alternative`` (plain text first, HTML last, both UTF-8) under
``email.policy.SMTP``. Every header value that comes from configuration or from sources is
checked for line breaks here, even where ``config.py`` already checked, because a header is the
last place an injection can be stopped.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from urllib.parse import quote

from digest.config import DeliverySection, SubscriberSection
from digest.errors import PermanentDeliveryError
from digest.models import Rendered

# str.splitlines() breaks on all of these; any of them in a header could start a new header line
# in some reader, so every one is refused, not just CR and LF.
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_ADDR_SPEC = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+$")
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_URI_IN_HEADER = re.compile(r"^[!#-;=?-\[\]_a-z~]+$")  # printable ASCII minus space " < > \ ^ `
_PHRASE_SPECIALS = re.compile(r"[^\w\s'!&+-]")

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

    def _fold_verbatim(self, name: str, value: str) -> str | None:
        text = str(value)
        if name.lower() not in _VERBATIM_HEADERS or not text.isascii():
            return None
        return f"{name}: " + f",{self.linesep} ".join(text.split(", ")) + self.linesep


# 7bit: non-ASCII bodies go out quoted-printable or base64, so no relay needs 8BITMIME
POLICY = _DigestPolicy(linesep="\r\n", cte_type="7bit")


def build_message(
    rendered: Rendered,
    subscriber: SubscriberSection,
    delivery: DeliverySection,
    *,
    title: str,
    now: dt.datetime,
) -> EmailMessage:
    """One subscriber's digest, ready for any transport.

    Raises ``PermanentDeliveryError`` (``where`` names the config field or the subscriber) when a
    header value contains a line break or an address is unusable: retrying cannot fix those.
    """
    sender = _sender(delivery.sender)
    recipient = _address(
        subscriber.name, subscriber.email, where=f"subscribers[{subscriber.email}]"
    )
    subject = _one_line(rendered.subject, where=f"subject for {subscriber.email}")

    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(
        # a naive clock is taken as UTC rather than sent as the ambiguous "-0000"
        now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    )
    message["Message-ID"] = email.utils.make_msgid(domain=sender.domain)
    if delivery.reply_to:
        message["Reply-To"] = _sender(delivery.reply_to, where="delivery.reply_to")
    message["List-Id"] = _list_id(delivery.list_id, title, sender.domain)
    unsubscribe = _unsubscribe_uris(delivery, subscriber.email)
    if unsubscribe:
        message["List-Unsubscribe"] = ", ".join(f"<{uri}>" for uri in unsubscribe)
        if any(uri.startswith("https://") for uri in unsubscribe):
            # RFC 8058: one-click is only defined for an https URI that accepts a POST
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for part in message.iter_parts():
        del part["MIME-Version"]  # make_alternative() copies it into the parts; it belongs on top
    return message


def _one_line(value: str, *, where: str) -> str:
    if any(ch in _LINE_BREAKS for ch in value):
        raise PermanentDeliveryError(
            f"line break in {value!r} would inject a mail header",
            where=where,
            hint="remove the line break (each header value must be one line)",
        )
    return value


def _sender(value: str, *, where: str = "delivery.from") -> Address:
    _one_line(value, where=where)
    name, addr = email.utils.parseaddr(value)
    if not addr:
        raise PermanentDeliveryError(
            f"{value!r} is not an address",
            where=where,
            hint='write it as "Name <address@example.org>" or just address@example.org',
        )
    return _address(name, addr, where=where)


def _address(name: str, addr: str, *, where: str) -> Address:
    _one_line(name, where=where)
    _one_line(addr, where=where)
    if not _ADDR_SPEC.match(addr):
        raise PermanentDeliveryError(
            f"{addr!r} is not an email address", where=where, hint="use local@domain.example"
        )
    local, domain = addr.rsplit("@", 1)
    if not local.isascii():
        raise PermanentDeliveryError(
            f"{addr!r} has a non-ASCII local part, which needs SMTPUTF8",
            where=where,
            hint="use an ASCII address for this subscriber",
        )
    try:
        # non-ASCII domains go on the wire as their IDNA (punycode) form
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise PermanentDeliveryError(
            f"{addr!r} has an invalid domain", where=where, hint="check the part after @"
        ) from exc
    return Address(display_name=name, username=local, domain=domain)


def _list_id(configured: str | None, title: str, domain: str) -> str:
    if configured:
        _one_line(configured, where="delivery.list_id")
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
    phrase = " ".join(_PHRASE_SPECIALS.sub(" ", _one_line(title, where="digest.title")).split())
    return f"{phrase} <{slug}.{domain}>" if phrase else f"<{slug}.{domain}>"


def _unsubscribe_uris(delivery: DeliverySection, email_address: str) -> list[str]:
    uris: list[str] = []
    for field, template in (
        ("delivery.unsubscribe_mailto", delivery.unsubscribe_mailto),
        ("delivery.unsubscribe_url", delivery.unsubscribe_url),
    ):
        if not template:
            continue
        uri = _one_line(template, where=field).replace("{email}", quote(email_address, safe="@"))
        if not _URI_IN_HEADER.match(uri):
            raise PermanentDeliveryError(
                f"{uri!r} has characters a header URI cannot carry",
                where=field,
                hint="percent-encode spaces, quotes, <, > and non-ASCII characters",
            )
        uris.append(uri)
    return uris
