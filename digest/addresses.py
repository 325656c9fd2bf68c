"""The one rule for email addresses, shared by ``digest check`` and by every message sent.

An address is what ``email-validator`` accepts (RFC 5321/5322 syntax, no quoted local parts or
domain literals, an internationalised domain encoded as IDNA) without SMTPUTF8, so every relay
can carry it. Addresses made only of the characters nearly everyone uses take a fast path that
accepts exactly what the library would, so a config of 100,000 subscribers checks in well under a
second; anything else goes through the library itself.
"""

from __future__ import annotations

import functools
import re
from email.utils import getaddresses

import email_validator

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SIMPLE = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$")
_SPECIAL_USE = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def wire_address(raw: str) -> str:
    """``raw`` as it goes on the wire (domain lower-cased, IDNA-encoded); ValueError saying what
    is wrong otherwise (the message fits after ``subscribers[0].email:``)."""
    if _simple(raw):
        local, domain = raw.rsplit("@", 1)
        return f"{local}@{domain.lower()}"
    if "@" in raw and not raw.rsplit("@", 1)[0].isascii():
        raise ValueError(
            f"{raw!r} has a non-ASCII local part, which needs SMTPUTF8 (few servers offer it)"
        )
    try:
        checked = email_validator.validate_email(
            raw, check_deliverability=False, allow_smtputf8=False
        )
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"{raw!r} is not a usable email address: {exc}") from None
    return str(checked.ascii_email)


def _simple(raw: str) -> bool:
    if len(raw) > 254 or not _SIMPLE.match(raw):
        return False
    local, domain = raw.rsplit("@", 1)
    return len(local) <= 64 and _plain_domain(domain.lower())


@functools.lru_cache(maxsize=4096)
def _plain_domain(domain: str) -> bool:
    """Whether a (lower-case, LDH) domain passes email-validator as written: not too long, no
    IDNA-reserved ``--``, not a special-use name (``localhost``, ``.test``, ...)."""
    if len(domain) > 253 or "--" in domain:
        return False
    return not any(domain == name or domain.endswith("." + name) for name in _SPECIAL_USE)


def parse_mailbox(value: str) -> tuple[str, str]:
    """``"Name <local@domain>"`` or ``local@domain`` as (display name, wire address).

    ValueError unless ``value`` is exactly one address: ``"a@x.org, b@evil.com"`` is refused, not
    cut down to its first address.
    """
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1]:
        raise ValueError(
            f"{value!r} must be exactly one address, written as "
            '"Name <address@example.org>" or just address@example.org'
        )
    name, address = found[0]
    return name, wire_address(address)
