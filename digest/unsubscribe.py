"""The reader's links: a signed token per subscriber, and the page addresses made of it
(unsubscribe, the digest in a browser, the archive, the preferences page, a verdict on a paper).

A token is ``<address>.<tag>``, both base64url: the address as the store keys it, and the first
16 bytes of HMAC-SHA256, under the operator's secret (the variable ``[server] secret_env``
names), of the list and the address. So a token names one subscriber of one list, cannot be
made up or pointed at another address without the secret, and needs no table to look it up.
Tokens are checked in constant time; no cookie, account or JavaScript is involved.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from digest.errors import ConfigError

MIN_SECRET_LENGTH = 16
TAG_BYTES = 16
DEFAULT_LIST = "paper-digest"
SECRET_HINT = (
    'set it to a long random value, e.g. `export {name}="$(python3 -c '
    "'import secrets; print(secrets.token_urlsafe(32))')\"`, the same for `digest run` and "
    "`digest serve`"
)


@dataclass(frozen=True)
class UnsubscribeLinks:
    """How this list signs and reads its unsubscribe links."""

    base_url: str
    secret: bytes
    list_name: str = DEFAULT_LIST

    def token_for(self, email: str) -> str:
        """The token of ``email`` (any case: it names the address)."""
        address = email.strip().lower()
        return f"{_b64(address.encode('utf-8'))}.{_b64(self._tag(address))}"

    def url_for(self, email: str) -> str:
        """The page where ``email`` can leave the list (also the one-click POST target)."""
        return f"{self.base_url}/u/{self.token_for(email)}"

    def view_url(self, email: str, digest_id: str) -> str:
        """The page showing the digest ``digest_id`` sent to ``email`` ("view in browser")."""
        return f"{self.base_url}/d/{self.token_for(email)}/{digest_id}"

    def archive_url(self, email: str) -> str:
        """The page listing the digests sent to ``email``."""
        return f"{self.base_url}/a/{self.token_for(email)}"

    def preferences_url(self, email: str) -> str:
        """The page where the reader of ``email`` changes their interests and cadence."""
        return f"{self.base_url}/p/{self.token_for(email)}"

    def feedback_base(self, email: str) -> str:
        """Where ``email``'s verdict links start: ``more/KEY`` or ``less/KEY`` completes one."""
        return f"{self.base_url}/f/{self.token_for(email)}/"

    def feedback_url(self, email: str, key: str, verdict: str) -> str:
        """The page where ``email`` says ``verdict`` ("more" or "less") of the paper ``key``."""
        return f"{self.feedback_base(email)}{verdict}/{quote(key, safe='')}"

    def address_in(self, token: str) -> str | None:
        """The address a genuine token names; None for a forged, altered or foreign one."""
        encoded, dot, tag = token.partition(".")
        if not dot or len(token) > 1024:
            return None
        try:
            address = _unb64(encoded).decode("utf-8")
            given = _unb64(tag)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not hmac.compare_digest(given, self._tag(address)):
            return None
        if token != self.token_for(address):
            return None  # one spelling only: no padding, no "+" or "/", the address as keyed
        return address

    def _tag(self, address: str) -> bytes:
        message = b"unsubscribe\0" + self.list_name.encode("utf-8") + b"\0" + address.encode()
        return hmac.new(self.secret, message, hashlib.sha256).digest()[:TAG_BYTES]


def links_from(
    base_url: str | None, secret_env: str, list_name: str | None, env: Mapping[str, str]
) -> UnsubscribeLinks | None:
    """The links of ``[server]``, or None when it names no ``base_url``; ConfigError when the
    secret's variable is unset or too short to sign with."""
    if base_url is None:
        return None
    secret = env.get(secret_env, "")
    if len(secret) < MIN_SECRET_LENGTH:
        state = "is not set" if not secret else f"holds fewer than {MIN_SECRET_LENGTH} characters"
        raise ConfigError(
            f"${secret_env} {state}: it signs the unsubscribe links",
            where="server.secret_env",
            hint=SECRET_HINT.format(name=secret_env),
        )
    return UnsubscribeLinks(base_url, secret.encode("utf-8"), list_name or DEFAULT_LIST)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
