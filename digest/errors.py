"""The error hierarchy: every failure a user can cause or meet, with where it happened and a fix.

::

    DigestError                     base; ``where`` (file, URL, field) + ``hint``; exit status 1
    ├── UsageError                  bad command-line arguments                     exit 2
    ├── ConfigError                 the TOML file is missing, malformed or invalid exit 2
    ├── SourceError                 one source (file, URL) could not be read       exit 1
    │   ├── FetchError              network failure or HTTP error status
    │   └── ParseError              the content is not a Daily Papers format
    ├── StoreError                  the SQLite store is unwritable or not ours     exit 2
    │   └── LockedError             another run holds the run lock                 exit 1
    ├── RenderError                 an email cannot be rendered                    exit 2
    │   └── TemplateError           a template is missing, broken or fails (file:line)
    └── DeliveryError               the transport did not accept a message         exit 1
        ├── TemporaryDeliveryError  worth retrying (SMTP 4xx, dropped connection)
        ├── PermanentDeliveryError  this message will not succeed as is
        │   ├── RecipientRefusedError   the server refused this address (5xx to RCPT):
        │   │                           the only failure that counts towards suspension
        │   └── MessageRefusedError     the server refused this message as a whole (5xx to
        │                               DATA: too big, a line too long): not the reader's fault
        └── ChannelUnavailableError the channel itself is down (cannot connect, no greeting,
                                    TLS, login, deadline, the sender refused, an endpoint
                                    gone): the run stops sending, every digest stays owed,
                                    nobody's bounce count moves

Foreign exceptions (``httpx.HTTPError``, ``sqlite3.Error``, ``smtplib.SMTPException``,
``pydantic.ValidationError``, ...) are translated into one of these where they enter the
package, with ``raise ... from exc``, so ``cli.py`` has a single place that turns any of them into
a one-line message plus a hint.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error paper-digest reports to its user."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class UsageError(DigestError):
    """The command line asks for something impossible."""

    exit_code = 2


class ConfigError(DigestError):
    """The configuration file is missing, not valid TOML, or does not fit the schema."""

    exit_code = 2


class SourceError(DigestError):
    """One source could not be read; the others still are."""


class FetchError(SourceError):
    """A network request failed (connection, timeout, or an HTTP error status)."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.status = status


class ParseError(SourceError):
    """The content is not in any Daily Papers format we know."""


class StoreError(DigestError):
    """The SQLite store cannot be opened, written, or is not a paper-digest store."""

    exit_code = 2


class LockedError(StoreError):
    """Another run holds the store's run lock."""

    exit_code = 1


class RenderError(DigestError):
    """A template is missing or fails to render."""

    exit_code = 2


class TemplateError(RenderError):
    """A template is missing, does not parse, or fails while rendering (names file and line)."""


class DeliveryError(DigestError):
    """The transport did not accept a message."""


class TemporaryDeliveryError(DeliveryError):
    """The transport refused for now (SMTP 4xx, dropped connection): retry later."""


class PermanentDeliveryError(DeliveryError):
    """The transport refused this message for good (SMTP 5xx, invalid address)."""


class RecipientRefusedError(PermanentDeliveryError):
    """The server refused this one recipient for good (SMTP 5xx to RCPT TO, a webhook's 4xx for
    this subscriber's own endpoint): enough of these in a row suspend the subscriber."""


class MessageRefusedError(PermanentDeliveryError):
    """The server refused this message as a whole (SMTP 5xx to DATA): the message's fault, never
    counted as the recipient's bounce."""


class ChannelUnavailableError(DeliveryError):
    """The channel cannot deliver anything now (connection, greeting, TLS, login, deadline, a
    server that refuses the sender or every message): never a subscriber's fault; the run stops
    sending and every digest stays owed for the next run."""
