"""``method = "smtp"``: digests sent to a mail server, over one connection for the whole run.

:class:`SmtpSettings` is ``[delivery.smtp]``; the password is read from the environment variable
it names (never from the file). :class:`SmtpTransport` keeps one session open, reopens it when
the server drops it, retries 4xx answers with backoff and fails a 5xx at once, and stops trying
for the rest of the run once the server proved unavailable.

Who is at fault decides what a failure costs. A 5xx to ``RCPT TO`` is this recipient refused
(:class:`RecipientRefusedError`: enough in a row suspend the subscriber); a 5xx to ``DATA`` is
this message refused (:class:`MessageRefusedError`). Everything else that stops a message is the
server's or the config's: no connection, no greeting, TLS, login, a refused sender, "relaying
denied", a deadline, or retries against a server that keeps failing: the channel is down
(:class:`ChannelUnavailableError`), the run stops sending and nobody's bounce count moves. A
:class:`FailureBudget` bounds the time one run spends on failing attempts (``give_up_after``,
default 45 s), so a dead or dripping server holds a run well under a minute, however many
subscribers wait.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from digest.deliver import Channel, ChannelContext, Closing
from digest.deliver.mail import MailChannel
from digest.deliver.message import WireMessage
from digest.deliver.smtp_session import (
    Retry,
    Session,
    SmtpSession,
    TlsSession,
    Watchdog,
    reply_text,
)
from digest.errors import (
    ChannelUnavailableError,
    ConfigError,
    DeliveryError,
    MessageRefusedError,
    RecipientRefusedError,
    TemporaryDeliveryError,
)
from digest.settings import ChannelOption, Section

if TYPE_CHECKING:
    from digest.deliver.smtp_pool import Backoff

Sleep = Callable[[float], None]


class SmtpSettings(Section):
    """``[delivery.smtp]``: the outgoing mail server."""

    host: str
    port: int = Field(587, ge=1, le=65535, strict=True)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str = "DIGEST_SMTP_PASSWORD"
    timeout: float = Field(30.0, gt=0, strict=True)
    deadline: float = Field(60.0, gt=0, strict=True)
    retries: int = Field(3, ge=0, le=10, strict=True)
    connections: int = Field(1, ge=1, le=16, strict=True)
    max_per_minute: float | None = Field(None, gt=0, strict=True)
    give_up_after: float = Field(45.0, gt=0, strict=True)


class FailureBudget:
    """The seconds one run may spend on attempts that fail (connecting, waiting for answers,
    backing off) since the last message that went through; shared by the sessions of a pool.
    Spent, the server counts as unavailable."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._used = 0.0
        self._lock = threading.Lock()

    def spend(self, seconds: float) -> None:
        """Count ``seconds`` lost to a failure."""
        with self._lock:
            self._used += max(seconds, 0.0)

    def refill(self) -> None:
        """A message went through: the server works, so only failures since then count (one
        greylisted address after another must not pass for a dead server)."""
        with self._lock:
            self._used = 0.0

    def left(self) -> float:
        """What is left of the budget (0 once it is spent)."""
        with self._lock:
            return max(self.seconds - self._used, 0.0)


def _server_wide(code: int, reply: str) -> bool:
    """Whether a refusal of a recipient is really the server refusing this client: relaying
    denied, authentication required. Every address would get it, so nobody's address is wrong."""
    lowered = reply.lower()
    return code == 530 or any(word in lowered for word in ("relay", "authentication", "auth "))


class SmtpChannel:
    """``method = "smtp"``: a mail channel on :class:`SmtpTransport`."""

    option: ClassVar[ChannelOption] = ChannelOption("smtp", SmtpSettings | None, None)

    @classmethod
    def open(cls, settings: SmtpSettings, context: ChannelContext) -> Channel:
        """The channel, with the password taken from ``$password_env`` when a username is set;
        a pool of sessions under one rate limit with ``connections`` > 1 or ``max_per_minute``."""
        if settings.connections == 1 and settings.max_per_minute is None:
            return MailChannel(smtp_transport(settings, context), context.message)
        from digest.deliver.smtp_pool import Backoff, RateLimit, SmtpPool

        backoff = Backoff(sleep=context.sleep)
        budget = FailureBudget(settings.give_up_after)
        pool = SmtpPool(
            [
                smtp_transport(settings, context, backoff=backoff, budget=budget)
                for _ in range(settings.connections)
            ],
            limit=RateLimit(settings.max_per_minute) if settings.max_per_minute else None,
            backoff=backoff,
        )
        return MailChannel(pool, context.message)

    @classmethod
    def target(cls, settings: SmtpSettings, context: ChannelContext) -> str:
        """``host:port``."""
        return f"{settings.host}:{settings.port}"


def smtp_transport(
    settings: SmtpSettings,
    context: ChannelContext,
    *,
    backoff: Backoff | None = None,
    budget: FailureBudget | None = None,
) -> SmtpTransport:
    """A transport for ``settings``; ConfigError when the password variable is not set."""
    password: str | None = None
    if settings.username:
        password = context.env.get(settings.password_env) or None
        if password is None:
            raise ConfigError(
                f"${settings.password_env} is not set, so there is no password for "
                f"{settings.username!r}",
                where="delivery.smtp.password_env",
                hint=f"export {settings.password_env}=... before running, or remove username",
            )
    return SmtpTransport(
        settings,
        password=password,
        ssl_context=context.ssl_context or ssl.create_default_context(),
        sleep=context.sleep,
        backoff=backoff,
        budget=budget,
    )


class SmtpTransport(Closing):
    """One SMTP connection for the whole run, reopened when the server drops it.

    Per message: 4xx answers and dropped connections are retried ``settings.retries`` times with
    exponential backoff, then raised as ``TemporaryDeliveryError``; a 5xx to the recipient raises
    ``RecipientRefusedError`` and to the data ``MessageRefusedError``, at once. When the server
    cannot be reached, does not answer in time, refuses the TLS handshake, the login or the
    sender, or the failure budget is spent, ``ChannelUnavailableError`` is remembered and every
    later ``send`` of this transport fails fast with it, instead of waiting out the retries again
    for each subscriber.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Sleep = time.sleep,
        first_delay: float = 1.0,
        max_backoff: float = 60.0,
        backoff: Backoff | None = None,
        budget: FailureBudget | None = None,
    ) -> None:
        self.settings = settings
        self._password = password
        self._context = ssl_context or ssl.create_default_context()
        self._sleep = sleep
        self._first_delay = first_delay
        self._max_backoff = max_backoff
        self._shared_backoff = backoff
        self._budget = budget or FailureBudget(settings.give_up_after)
        self._smtp: SmtpSession | None = None
        self._watchdog = Watchdog()
        self._broken: DeliveryError | None = None
        self._local_hostname: str | None = None
        self.connections = 0

    @property
    def broken(self) -> DeliveryError | None:
        """Why this transport gave up for the run, once it has."""
        return self._broken

    @property
    def where(self) -> str:
        """``host:port`` of the server, for error messages."""
        return f"{self.settings.host}:{self.settings.port}"

    def send(self, message: WireMessage) -> None:
        """Send ``message``; returns only after the server answered 250 to its data."""
        if self._broken is not None:
            raise ChannelUnavailableError(
                f"not tried: {self._broken.message}", where=self.where, hint=self._broken.hint
            ) from self._broken
        recipient = ", ".join(message.recipients)
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            started = self._budget.clock()
            try:
                self._deliver(message)
                self._budget.refill()
                return
            except Retry as retry:
                self._budget.spend(self._budget.clock() - started)
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                spent = self._budget.left() <= 0
                if spent or (retry.unreachable and (retry.final or attempt + 1 == attempts)):
                    raise self._down(
                        f"{retry.reason}{tries}"
                        + (
                            f"; {self.settings.give_up_after:g} s of failures this run: "
                            "no more tries"
                            if spent and not retry.unreachable
                            else ""
                        ),
                        retry.hint
                        or "the mail server is down, too slow or misconfigured; "
                        "every digest stays owed and the next run sends them",
                    ) from retry.__cause__
                if attempt + 1 < attempts and not retry.final:
                    delay = min(
                        self._first_delay * 2**attempt, self._max_backoff, self._budget.left()
                    )
                    self._budget.spend(delay)
                    if self._shared_backoff is not None:
                        self._shared_backoff.pause(delay)  # every session of the pool waits
                        self._shared_backoff.wait()
                    else:
                        self._sleep(delay)
                    continue
                raise TemporaryDeliveryError(
                    f"{retry.reason}{tries}",
                    where=f"{self.where} -> {recipient}",
                    hint=retry.hint or "the message stays pending; the next run sends it again",
                ) from retry.__cause__
            except ChannelUnavailableError as exc:
                self._budget.spend(self._budget.clock() - started)
                self._broken = exc
                raise

    def _down(self, message: str, hint: str) -> ChannelUnavailableError:
        """The server counts as unavailable for the rest of the run, for ``message``."""
        self._broken = ChannelUnavailableError(message, where=self.where, hint=hint)
        return self._broken

    def _step_deadline(self) -> float:
        """A step waits its deadline, or what is left of the run's failure budget if less."""
        return max(min(self.settings.deadline, self._budget.left()), 0.001)

    def _deliver(self, message: WireMessage) -> None:
        smtp = self._connection()
        smtp.data_sent = False
        deadline = self._step_deadline()
        try:
            with self._watchdog.step(deadline):
                refused = smtp.sendmail(message.sender, list(message.recipients), message.data)
            if self._watchdog.fired:  # smtplib may have read a reply cut short as a whole one
                raise smtplib.SMTPServerDisconnected("cut off at the deadline")
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._answer(code, text, exc, stage="recipient")
        except smtplib.SMTPSenderRefused as exc:
            self._answer(exc.smtp_code, exc.smtp_error, exc, stage="sender")
        except smtplib.SMTPDataError as exc:
            self._answer(exc.smtp_code, exc.smtp_error, exc, stage="data")
        except smtplib.SMTPResponseException as exc:
            self._answer(exc.smtp_code, exc.smtp_error, exc, stage="session")
        except OSError as exc:  # includes SMTPServerDisconnected and other SMTPExceptions
            self._drop()
            if smtp.data_sent:
                # The server may have kept it: never again in this run; the next run resends.
                raise Retry(
                    "the connection dropped after the whole message was sent, before the "
                    "server answered: it may or may not have been delivered",
                    hint="it stays pending and is sent once more next run",
                    final=True,
                ) from exc
            if self._watchdog.fired:
                raise Retry(
                    f"no answer within the {deadline:g} s deadline",
                    hint="the server is too slow; raise [delivery.smtp] deadline or try later",
                    final=True,
                    unreachable=True,
                ) from exc
            if isinstance(exc, smtplib.SMTPServerDisconnected):
                raise Retry(f"connection lost: {exc}") from exc
            raise Retry(f"SMTP conversation failed: {exc}") from exc
        if refused:
            # one message, one recipient: a partial refusal still means this one was refused
            code, text = next(iter(refused.values()))
            self._answer(code, text, None, stage="recipient")

    def _answer(self, code: int, text: bytes | str, exc: Exception | None, *, stage: str) -> None:
        """Raise what a refusal at ``stage`` (recipient, sender, data, session) means."""
        reply = " ".join(reply_text(text).split())
        if code == 421 or (self._smtp is not None and self._smtp.sock is None):
            self._drop()  # smtplib closed the socket on 421; reconnect for the next attempt
        if 400 <= code < 500:
            raise Retry(f"server answered {code} {reply}") from exc
        if not 500 <= code < 600:
            # no refusal at all: a reply cut short or out of step (a dripping server)
            raise Retry(f"unexpected answer from the server: {code} {reply}", unreachable=True)
        if stage == "recipient" and not _server_wide(code, reply):
            raise RecipientRefusedError(
                f"server refused the address: {code} {reply}",
                where=self.where,
                hint="check the subscriber's address; the papers stay owed",
            ) from exc
        if stage == "data":
            raise MessageRefusedError(
                f"server refused the message: {code} {reply}",
                where=self.where,
                hint="the server will not take this message as it is (its size or content); "
                "the papers stay owed",
            ) from exc
        who = {"recipient": "every recipient", "sender": "the sender"}.get(stage, "the session")
        raise self._down(
            f"server refuses {who}: {code} {reply}",
            "check [delivery] from, username and password_env, and that the server relays "
            "for this client",
        ) from exc

    def _connection(self) -> SmtpSession:
        if self._smtp is None:
            self._smtp = self._connect()
            self.connections += 1
        return self._smtp

    def _connect(self) -> SmtpSession:
        settings = self.settings
        if self._local_hostname is None:
            self._local_hostname = socket.getfqdn()
        deadline = self._step_deadline()
        try:
            with self._watchdog.step(deadline):
                smtp = self._open_session(settings)
            if self._watchdog.fired:  # a greeting cut short can pass for a whole one
                smtp.close()
                raise smtplib.SMTPServerDisconnected("cut off at the deadline")
            return smtp
        except BaseException as exc:
            if self._watchdog.fired:
                # A server that does not greet in time is not asked again in this run.
                raise Retry(
                    f"no greeting or answer within the {deadline:g} s deadline while "
                    "opening the session",
                    hint="is this an SMTP server, and is it up? the next run tries again",
                    final=True,
                    unreachable=True,
                ) from exc
            translated = self._connect_error(exc) if isinstance(exc, Exception) else None
            if translated is None:
                raise
            raise translated from exc

    def _open_session(self, settings: SmtpSettings) -> SmtpSession:
        smtp: SmtpSession | None = None
        try:
            if settings.security == "ssl":
                smtp = TlsSession(
                    self._watchdog,
                    host=settings.host,
                    port=settings.port,
                    local_hostname=self._local_hostname,
                    timeout=settings.timeout,
                    context=self._context,
                )
            else:
                smtp = Session(
                    self._watchdog,
                    host=settings.host,
                    port=settings.port,
                    local_hostname=self._local_hostname,
                    timeout=settings.timeout,
                )
            assert smtp is not None
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
        except BaseException:
            if smtp is not None:
                smtp.close()
            raise

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
            message = f"login refused: {exc.smtp_code} {reply_text(exc.smtp_error)}"
            hint = f"check username = {settings.username!r} and ${settings.password_env}"
        elif isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500:
            return Retry(
                f"server answered {exc.smtp_code} while opening the session", unreachable=True
            )
        elif isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionResetError):
            return Retry(f"connection closed while opening the session: {exc}", unreachable=True)
        elif isinstance(exc, socket.gaierror):
            return Retry(
                f"cannot resolve {settings.host!r}: {exc.strerror or exc}",
                hint="check [delivery.smtp].host and this machine's DNS",
                unreachable=True,
            )
        elif isinstance(exc, OSError | smtplib.SMTPException):
            return Retry(
                f"cannot connect: {getattr(exc, 'strerror', None) or exc}",
                hint="is the mail server up, and are host, port and security right?",
                unreachable=True,
            )
        else:
            return None
        return self._down(message, hint)

    def probe(self) -> list[str]:
        """Open a session as a run would (TLS, login), say QUIT, and tell what the server
        answered at each step; sends nothing. DeliveryError when a step fails."""
        settings = self.settings
        try:
            smtp = self._connection()
            if smtp.ehlo_resp is None:  # no STARTTLS or login asked for one: ask now
                smtp.ehlo()
        except Retry as retry:
            raise ChannelUnavailableError(
                retry.reason, where=self.where, hint=retry.hint
            ) from retry
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelUnavailableError(
                f"no EHLO answer: {exc}", where=self.where, hint="is this an SMTP server?"
            ) from exc
        ehlo = reply_text(smtp.ehlo_resp or b"").splitlines()
        lines = [f"connected to {self.where}: {ehlo[0] if ehlo else 'no EHLO answer'}"]
        if ehlo[1:]:
            lines.append("  offers: " + ", ".join(line.split()[0] for line in ehlo[1:] if line))
        sock = smtp.sock
        if isinstance(sock, ssl.SSLSocket):
            cipher = sock.cipher()
            lines.append(f"  TLS: {sock.version()}, {cipher[0] if cipher else 'unknown cipher'}")
        else:
            lines.append('  TLS: none (security = "none")')
        if settings.username:
            lines.append(f"  login: accepted for {settings.username!r}")
        try:
            code, reply = smtp.quit()
            lines.append(f"  QUIT: {code} {reply_text(reply)}")
        except (OSError, smtplib.SMTPException) as exc:
            lines.append(f"  QUIT: no clean answer ({exc})")
        finally:
            self._smtp = None
            smtp.close()
        return lines

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
