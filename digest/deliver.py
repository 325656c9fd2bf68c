"""The transports that hand a built message over: SMTP, an outbox of .eml files, or a Maildir.

A transport's ``send`` returns only once the message was *accepted* (the SMTP server answered 250
to DATA, or the file is durably on disk); only then may the caller record the papers as delivered.
Failures are ``TemporaryDeliveryError`` (try again next run) or ``PermanentDeliveryError`` (will
not work as is), and concern that one message: the transport stays usable for the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import mailbox
import os
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from digest.config import Config, SmtpSection
from digest.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from digest.message import build_message

__all__ = [
    "FileTransport",
    "MaildirTransport",
    "SmtpTransport",
    "Transport",
    "build_message",
    "open_transport",
]

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], None]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Transport(Protocol):
    """Where messages go. ``send`` returns only when the message was accepted."""

    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Closing:
    """Context-manager behaviour shared by the transports."""

    def close(self) -> None:
        """Release what the transport holds (nothing, unless overridden)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_transport(
    config: Config,
    *,
    env: Mapping[str, str] = os.environ,
    sleep: Sleep = time.sleep,
    ssl_context: ssl.SSLContext | None = None,
    clock: Clock = _utc_now,
) -> Transport:
    """The transport ``[delivery].method`` names, checked before anything is sent.

    ``ssl_context`` replaces ``ssl.create_default_context()`` (for a private CA); ``clock`` names
    the files of the outbox.
    """
    delivery = config.delivery
    if delivery.method == "file":
        return FileTransport(config.resolve(delivery.outbox), clock=clock)
    if delivery.method == "maildir":
        return MaildirTransport(config.resolve(delivery.maildir))
    if delivery.smtp is None:  # config validation makes this unreachable; keep mypy honest
        raise ConfigError('method = "smtp" needs a [delivery.smtp] table', where="delivery")
    smtp = delivery.smtp
    password: str | None = None
    if smtp.username:
        password = env.get(smtp.password_env) or None
        if password is None:
            raise ConfigError(
                f"${smtp.password_env} is not set, so there is no password for {smtp.username!r}",
                where="delivery.smtp.password_env",
                hint=f"export {smtp.password_env}=... before running, or remove username",
            )
    return SmtpTransport(
        smtp,
        password=password,
        ssl_context=ssl_context or ssl.create_default_context(),
        sleep=sleep,
    )


def _fsync_dir(path: Path) -> None:
    # a rename or link is durable only once the directory entry is flushed too
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileTransport(_Closing):
    """Writes each message as ``<UTC time>-<recipient>-<id hash>.eml`` into an outbox folder.

    The bytes go to a hidden temporary file that is fsynced, then hard-linked to its final name,
    which fails rather than overwrites when the name exists: a reader of the outbox never sees a
    partial file, and no message ever replaces another.
    """

    def __init__(self, outbox: Path, *, clock: Clock = _utc_now) -> None:
        self.outbox = outbox
        self._clock = clock
        self.last_path: Path | None = None
        try:
            outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create the outbox folder: {exc.strerror or exc}",
                where=str(outbox),
                hint="check [delivery].outbox and the folder's permissions",
            ) from exc

    def send(self, message: EmailMessage) -> None:
        """Write ``message`` durably; returns the moment it is complete on disk."""
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        stem = self._stem(message)
        tmp = self.outbox / f".tmp-{uuid.uuid4().hex}.eml"
        try:
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.last_path = self._link_unique(tmp, stem)
            _fsync_dir(self.outbox)
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot write the message: {exc.strerror or exc}",
                where=str(self.outbox),
                hint="check free space and permissions of the outbox folder",
            ) from exc
        finally:
            with contextlib.suppress(OSError):  # the real error, if any, is already on its way
                tmp.unlink(missing_ok=True)

    def _stem(self, message: EmailMessage) -> str:
        stamp = self._clock().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        recipients = getaddresses([str(v) for v in message.get_all("To", [])])
        who = recipients[0][1] if recipients else "unknown"
        slug = re.sub(r"[^a-z0-9.@_-]+", "-", who.casefold()).replace("@", "-at-")[:60]
        ident = str(message.get("Message-ID", "")) or uuid.uuid4().hex
        digest = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        return f"{stamp}-{slug}-{digest}"

    def _link_unique(self, tmp: Path, stem: str) -> Path:
        for attempt in range(1000):
            final = self.outbox / (f"{stem}.eml" if attempt == 0 else f"{stem}-{attempt}.eml")
            try:
                os.link(tmp, final)
            except FileExistsError:
                continue
            return final
        raise OSError(f"no free file name for {stem}")


class MaildirTransport(_Closing):
    """Adds each message to a Maildir (``new/``), created when missing, and fsyncs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._box = mailbox.Maildir(path, create=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot open the Maildir: {exc.strerror or exc}",
                where=str(path),
                hint="check [delivery].maildir and the folder's permissions",
            ) from exc

    def send(self, message: EmailMessage) -> None:
        """Deliver into ``new/``; mailbox writes to ``tmp/`` first, so readers see whole files."""
        try:
            key = self._box.add(message)
            # mailbox.Maildir does not fsync; without it a power cut could lose an "accepted" mail
            # Maildir.add() files a message without flags as new/<key>
            fd = os.open(self.path / "new" / key, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.path / "new")
        except OSError as exc:
            raise TemporaryDeliveryError(
                f"cannot add the message: {exc.strerror or exc}",
                where=str(self.path),
                hint="check free space and permissions of the Maildir",
            ) from exc


class SmtpTransport(_Closing):
    """One SMTP connection for the whole run, reopened when the server drops it.

    Per message: 4xx answers and dropped connections are retried ``settings.retries`` times with
    exponential backoff, then raised as ``TemporaryDeliveryError``; 5xx answers raise
    ``PermanentDeliveryError`` at once. When the server cannot be reached or refuses the TLS
    handshake or the login, that error is remembered and every later ``send`` of this transport
    fails fast with it, instead of waiting out the retries again for each subscriber.
    """

    def __init__(
        self,
        settings: SmtpSection,
        *,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Sleep = time.sleep,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.settings = settings
        self._password = password
        self._context = ssl_context or ssl.create_default_context()
        self._sleep = sleep
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._smtp: smtplib.SMTP | None = None
        self._broken: DeliveryError | None = None
        self._local_hostname: str | None = None
        self.connections = 0

    @property
    def where(self) -> str:
        """``host:port`` of the server, for error messages."""
        return f"{self.settings.host}:{self.settings.port}"

    def send(self, message: EmailMessage) -> None:
        """Send ``message``; returns only after the server answered 250 to its data."""
        if self._broken is not None:
            raise type(self._broken)(
                f"not tried: {self._broken.message}", where=self.where, hint=self._broken.hint
            ) from self._broken
        recipient = ", ".join(str(v) for v in message.get_all("To", []))
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                self._deliver(message)
                return
            except _Retry as retry:
                if attempt + 1 < attempts:
                    self._sleep(min(self._backoff * 2**attempt, self._max_backoff))
                    continue
                final = TemporaryDeliveryError(
                    f"{retry.reason} (after {attempts} attempts)",
                    where=self.where if retry.unreachable else f"{self.where} -> {recipient}",
                    hint=retry.hint or "the message stays pending; the next run sends it again",
                )
                if retry.unreachable:
                    self._broken = final
                raise final from retry.__cause__

    def _deliver(self, message: EmailMessage) -> None:
        smtp = self._connection()
        try:
            refused = smtp.send_message(message)
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise _Retry(f"connection lost: {exc}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._answer(code, text, exc)
        except smtplib.SMTPResponseException as exc:
            self._answer(exc.smtp_code, exc.smtp_error, exc)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise _Retry(f"SMTP conversation failed: {exc}") from exc
        if refused:
            # one message, one recipient: a partial refusal still means this one was refused
            code, text = next(iter(refused.values()))
            self._answer(code, text, None)

    def _answer(self, code: int, text: bytes | str, exc: Exception | None) -> None:
        reply = _text(text)
        if code == 421 or (self._smtp is not None and self._smtp.sock is None):
            self._drop()  # smtplib closed the socket on 421; reconnect for the next attempt
        if 400 <= code < 500:
            raise _Retry(f"server answered {code} {reply}") from exc
        raise PermanentDeliveryError(
            f"server refused the message: {code} {reply}",
            where=self.where,
            hint="the server will not accept this message as is; check the address",
        ) from exc

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
            self.connections += 1
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        if self._local_hostname is None:
            self._local_hostname = socket.getfqdn()
        smtp: smtplib.SMTP | None = None
        try:
            if settings.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    local_hostname=self._local_hostname,
                    timeout=settings.timeout,
                    context=self._context,
                )
            else:
                smtp = smtplib.SMTP(
                    settings.host,
                    settings.port,
                    local_hostname=self._local_hostname,
                    timeout=settings.timeout,
                )
            if smtp.sock is not None:
                # the message body ends in a short segment that Nagle would hold until the
                # server's delayed ACK: measurably slower per message on a reused connection
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if settings.security == "starttls":
                smtp.ehlo()
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, self._password or "")
            return smtp
        except BaseException as exc:
            if smtp is not None:
                smtp.close()
            translated = self._connect_error(exc) if isinstance(exc, Exception) else None
            if translated is None:
                raise
            raise translated from exc

    def _connect_error(self, exc: Exception) -> Exception | None:
        """Translate a failure to open a session; remember those that retrying cannot fix."""
        settings = self.settings
        if isinstance(exc, ssl.SSLCertVerificationError):
            message = f"the server's TLS certificate is not trusted: {exc.verify_message}"
            hint = "check that [delivery.smtp].host matches the certificate, and the trusted CAs"
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            message = f"the server does not offer what the config asks for: {exc}"
            hint = 'STARTTLS or AUTH missing: check security = "starttls"/"ssl"/"none" and port'
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            message = f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            hint = f"check username = {settings.username!r} and ${settings.password_env}"
        elif isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500:
            return _Retry(f"server answered {exc.smtp_code} while opening the session")
        elif isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionResetError):
            return _Retry(f"connection closed while opening the session: {exc}")
        elif isinstance(exc, socket.gaierror):
            return _Retry(
                f"cannot resolve {settings.host!r}: {exc.strerror or exc}",
                hint="check [delivery.smtp].host and this machine's DNS",
                unreachable=True,
            )
        elif isinstance(exc, OSError | smtplib.SMTPException):
            return _Retry(
                f"cannot connect: {getattr(exc, 'strerror', None) or exc}",
                hint="is the mail server up, and are host, port and security right?",
                unreachable=True,
            )
        else:
            return None
        self._broken = PermanentDeliveryError(message, where=self.where, hint=hint)
        return self._broken

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        """Say QUIT politely if the connection is still up, then close it."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            smtp.close()


class _Retry(Exception):
    """Internal: this attempt failed in a way another attempt may fix.

    ``unreachable``: the server itself could not be reached, so when the retries run out the
    transport stops trying for the rest of the run.
    """

    def __init__(self, reason: str, *, hint: str | None = None, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.unreachable = unreachable


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
