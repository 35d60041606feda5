"""SMTP delivery (KINDLY_EMAIL__BACKEND=smtp) with a Redis ledger and a shared send rate
(:class:`connectors.quota.SendQuota`, the same count Graph's sendMail takes).

One digest per manager per week, as nearly as SMTP allows: the whole
envelope (connect, TLS, AUTH, MAIL, RCPT) is settled before the intent is
written, the message and its final "." go in one write, and the 250 reply is
recorded in Redis before anything else happens, shielded from cancellation.
A second copy (same Message-ID) can therefore only follow a crash or a broken
connection between the final "." and that record — the window SMTP itself
leaves open (RFC 1047).

SMTP errors are translated here, once: 4xx replies, timeouts and network
errors are ``DeliveryError(transient=True)``; 5xx replies, refused
credentials and TLS trouble are permanent.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from dataclasses import dataclass

import aiosmtplib
from redis.asyncio import Redis

from connectors.quota import SendQuota, SharedQuotas
from service.errors import DeliveryError, KindlyError
from service.ledger import DigestState, RedisLedger
from service.ports import Mailer, OutgoingMail, SendResult
from service.settings import Settings

log = logging.getLogger("kindly.smtp")


@dataclass(frozen=True, slots=True)
class SmtpOptions:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    #: implicit TLS from the first byte (port 465)
    use_tls: bool = False
    starttls: bool = True
    timeout: float = 30.0
    #: None: the system's trust store (honours SSL_CERT_FILE)
    tls_context: ssl.SSLContext | None = None

    @property
    def lease_seconds(self) -> float:
        """Long enough for one full SMTP transaction to time out step by step."""
        return self.timeout * 6


class SmtpMailer(Mailer):
    """Implements :class:`service.ports.Mailer` over SMTP, once per Message-ID and week."""

    def __init__(
        self,
        options: SmtpOptions,
        *,
        ledger: RedisLedger,
        rate: SendQuota | None = None,
        owned: Redis | None = None,
    ) -> None:
        self.options = options
        self.ledger = ledger
        self.rate = rate
        self._owned = owned
        self._inflight: set[asyncio.Task[None]] = set()

    async def already_sent(self, message_id: str, *, manager: str, week: str) -> bool:
        record = await self.ledger.digest(manager, week)
        return record.state is DigestState.SENT

    async def send(self, mail: OutgoingMail) -> SendResult:
        record = await self.ledger.digest(mail.manager, mail.week)
        if record.state is DigestState.SENT:
            return SendResult(record.message_id or mail.message_id, sent=False)
        if self.rate is not None:
            await self.rate.acquire()
        token = uuid.uuid4().hex
        client = self._client()
        try:
            await client.connect()
            await client.mail(self.options.sender)
            await client.rcpt(mail.manager)
            if not await self.ledger.begin_send(
                mail.manager,
                mail.week,
                mail.message_id,
                token=token,
                lease_seconds=self.options.lease_seconds,
            ):
                raise DeliveryError(
                    f"another process is sending {mail.manager}'s digest for {mail.week}; "
                    "retrying later",
                    transient=True,
                )
            await self._commit(client, mail, token)
        except aiosmtplib.SMTPException as exc:
            await self._release(mail, token)
            raise _translate(exc, self.options) from None
        except OSError as exc:
            await self._release(mail, token)
            raise DeliveryError(
                f"cannot reach SMTP server {self.options.host}:{self.options.port} ({exc}); "
                "check KINDLY_SMTP__HOST and KINDLY_SMTP__PORT",
                transient=not isinstance(exc, ssl.SSLError),
            ) from None
        finally:
            await _quit(client)
        return SendResult(mail.message_id, sent=True)

    async def _commit(self, client: aiosmtplib.SMTP, mail: OutgoingMail, token: str) -> None:
        """DATA, the message, the final "." and the ledger record, safe from cancellation."""

        async def deliver() -> None:
            try:
                await client.data(mail.message.as_bytes())
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
                await self.ledger.note_ambiguous(
                    mail.manager,
                    mail.week,
                    "the connection broke after the message was sent; SMTP cannot tell "
                    "whether it arrived, so it is sent again (same Message-ID)",
                )
                raise
            await self.ledger.record_sent(mail.manager, mail.week, mail.message_id)

        task = asyncio.create_task(deliver())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        await asyncio.shield(task)

    async def _release(self, mail: OutgoingMail, token: str) -> None:
        try:
            await self.ledger.end_send(mail.manager, mail.week, token=token)
        except KindlyError as exc:
            # releasing early is an optimisation: the lease expires on its own
            log.debug("sending lease not released early: %s", exc)

    def _client(self) -> aiosmtplib.SMTP:
        o = self.options
        return aiosmtplib.SMTP(
            hostname=o.host,
            port=o.port,
            username=o.username,
            password=o.password,
            use_tls=o.use_tls,
            start_tls=o.starttls and not o.use_tls,
            timeout=o.timeout,
            tls_context=o.tls_context,
        )

    async def aclose(self) -> None:
        """Let a send past its final "." record its result before the process goes."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=self.options.lease_seconds)
        if self._owned is not None:
            await self._owned.aclose()


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def _translate(exc: aiosmtplib.SMTPException, o: SmtpOptions) -> DeliveryError:
    server = f"SMTP server {o.host}:{o.port}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"{server} refused the login ({exc.code}); check KINDLY_SMTP__USERNAME and "
            "KINDLY_SMTP__PASSWORD",
            status=exc.code,
            transient=400 <= exc.code < 500,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        transient = 400 <= exc.code < 500
        hint = "it is retried" if transient else "check the sender and recipient addresses"
        return DeliveryError(
            f"{server} replied {exc.code} {exc.message.strip()[:200]}; {hint}",
            status=exc.code,
            transient=transient,
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(
            f"{server}: {exc}; set KINDLY_SMTP__STARTTLS=false or KINDLY_SMTP__USE_TLS=true "
            "to match what the server offers"
        )
    if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"{server}: its TLS certificate is not trusted ({exc.__cause__.verify_message}); "
            "add its CA to the bundle in SSL_CERT_FILE or fix KINDLY_SMTP__HOST"
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return DeliveryError(
            f"cannot reach {server} ({exc}); check KINDLY_SMTP__HOST and KINDLY_SMTP__PORT; "
            "it is retried",
            transient=True,
        )
    # disconnects and timeouts
    return DeliveryError(f"{server}: {exc}; it is retried", transient=True)


def from_settings(settings: Settings) -> SmtpMailer:
    """The SMTP mailer wiring builds for KINDLY_EMAIL__BACKEND=smtp."""
    smtp = settings.smtp
    redis: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    sender = str(settings.email.from_)
    options = SmtpOptions(
        host=smtp.host,
        port=smtp.port,
        sender=sender,
        username=smtp.username,
        password=smtp.password.get_secret_value() if smtp.password else None,
        use_tls=smtp.use_tls,
        starttls=smtp.starttls,
        timeout=smtp.timeout,
    )
    rate = SendQuota(
        SharedQuotas(settings.redis_url),
        sender,
        per_minute=settings.email.send_per_minute,
        reason="smtp_send_rate",
    )
    return SmtpMailer(options, ledger=RedisLedger(redis), rate=rate, owned=redis)
