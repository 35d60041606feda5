"""SMTP delivery against a real aiosmtpd server (tests/smtpd.py) and the real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from redis.asyncio import Redis

from connectors.mail.smtp import SmtpMailer, SmtpOptions, from_settings
from connectors.quota import SendQuota, SharedQuotas
from service.errors import DeliveryError
from service.ledger import DigestState, RedisLedger
from service.ports import OutgoingMail
from service.settings import Settings
from tests.smtpd import Certificate, Fault, SmtpServer, self_signed, start_server

WEEK = "2026-W48"
MANAGER = "maria@example.com"
SENDER = "kindly@example.org"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def ledger(redis: Redis) -> AsyncIterator[RedisLedger]:
    prefix = f"kindly-test-{uuid.uuid4().hex[:8]}:"
    yield RedisLedger(redis, prefix=prefix)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def server() -> AsyncIterator[SmtpServer]:
    running = await start_server()
    yield running
    await running.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


def _mail(manager: str = MANAGER) -> OutgoingMail:
    message_id = f"<kindly-{WEEK}-{uuid.uuid4().hex[:6]}@example.org>"
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = manager
    message["Subject"] = "Your one-on-ones this week"
    message["Message-ID"] = message_id
    message.set_content("Hello.\n.\nA line that is only a dot stays in the message.\n")
    return OutgoingMail(manager, WEEK, message_id, message)


def _mailer(port: int, ledger: RedisLedger, **options: object) -> SmtpMailer:
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": SENDER,
        "starttls": False,
        "timeout": 5.0,
    }
    settings.update(options)
    return SmtpMailer(SmtpOptions(**settings), ledger=ledger)  # type: ignore[arg-type]


class TestDelivery:
    """A digest is delivered over SMTP once, and the ledger remembers it."""

    async def test_delivered_once(self, server: SmtpServer, ledger: RedisLedger) -> None:
        mailer, mail = _mailer(server.port, ledger), _mail()
        first = await mailer.send(mail)
        again = await mailer.send(mail)
        assert (first.sent, again.sent) == (True, False)
        assert [r.message_id for r in server.received] == [mail.message_id]
        assert server.received[0].recipients == [MANAGER]
        assert b"Hello.\r\n.\r\nA line" in server.received[0].data  # dot-stuffing round trip
        assert await mailer.already_sent(mail.message_id, manager=MANAGER, week=WEEK)

    async def test_starttls_with_login(self, certificate: Certificate, ledger: RedisLedger) -> None:
        server = await start_server(certificate=certificate, credentials=("kindly", "s3cret"))
        try:
            mailer = _mailer(
                server.port,
                ledger,
                starttls=True,
                username="kindly",
                password="s3cret",
                tls_context=certificate.client_context(),
            )
            assert (await mailer.send(_mail())).sent
        finally:
            await server.close()
        assert len(server.received) == 1

    async def test_implicit_tls(self, certificate: Certificate, ledger: RedisLedger) -> None:
        server = await start_server(certificate=certificate, implicit_tls=True)
        try:
            mailer = _mailer(
                server.port, ledger, use_tls=True, tls_context=certificate.client_context()
            )
            assert (await mailer.send(_mail())).sent
        finally:
            await server.close()
        assert len(server.received) == 1


class TestFailures:
    """4xx and network trouble are transient, 5xx and bad credentials are permanent."""

    @pytest.mark.parametrize(
        ("fault", "transient", "code"),
        [
            (Fault.RCPT_4XX, True, 451),
            (Fault.DATA_4XX, True, 451),
            (Fault.RCPT_5XX, False, 550),
            (Fault.DATA_5XX, False, 554),
            (Fault.DROP_AT_MAIL, True, None),
        ],
    )
    async def test_translated(
        self,
        server: SmtpServer,
        ledger: RedisLedger,
        fault: Fault,
        transient: bool,
        code: int | None,
    ) -> None:
        server.fault = fault
        mailer = _mailer(server.port, ledger)
        with pytest.raises(DeliveryError) as caught:
            await mailer.send(_mail())
        assert (caught.value.transient, caught.value.status) == (transient, code)
        assert "127.0.0.1" in str(caught.value)
        assert server.received == []
        assert (await ledger.digest(MANAGER, WEEK)).state is not DigestState.SENT

    async def test_transient_then_delivered(self, server: SmtpServer, ledger: RedisLedger) -> None:
        mailer, mail = _mailer(server.port, ledger), _mail()
        server.fault = Fault.DATA_4XX
        with pytest.raises(DeliveryError):
            await mailer.send(mail)
        server.fault = Fault.NONE
        assert (await mailer.send(mail)).sent
        assert len(server.received) == 1

    async def test_wrong_password(self, certificate: Certificate, ledger: RedisLedger) -> None:
        server = await start_server(certificate=certificate, credentials=("kindly", "s3cret"))
        try:
            mailer = _mailer(
                server.port,
                ledger,
                starttls=True,
                username="kindly",
                password="wrong",
                tls_context=certificate.client_context(),
            )
            with pytest.raises(DeliveryError, match="KINDLY_SMTP__PASSWORD") as caught:
                await mailer.send(_mail())
        finally:
            await server.close()
        assert (caught.value.transient, caught.value.status) == (False, 535)

    async def test_untrusted_certificate(
        self, certificate: Certificate, ledger: RedisLedger
    ) -> None:
        server = await start_server(certificate=certificate, implicit_tls=True)
        try:
            with pytest.raises(DeliveryError) as caught:
                await _mailer(server.port, ledger, use_tls=True).send(_mail())
        finally:
            await server.close()
        assert not caught.value.transient
        assert server.received == []

    async def test_nothing_listening(self, ledger: RedisLedger) -> None:
        with pytest.raises(DeliveryError, match="KINDLY_SMTP__HOST") as caught:
            await _mailer(1, ledger).send(_mail())
        assert caught.value.transient


class TestDuplicateWindow:
    """Only a break between the final "." and the reply can cause a second copy."""

    async def test_reply_lost_after_data_sends_again_with_same_id(
        self, server: SmtpServer, ledger: RedisLedger
    ) -> None:
        mailer, mail = _mailer(server.port, ledger), _mail()
        server.fault = Fault.DROP_AFTER_DATA
        with pytest.raises(DeliveryError) as caught:
            await mailer.send(mail)
        assert caught.value.transient
        record = await ledger.digest(MANAGER, WEEK)
        assert record.state is DigestState.SENDING
        assert "cannot tell" in (record.reason or "")
        server.fault = Fault.NONE
        assert (await mailer.send(mail)).sent
        assert [r.message_id for r in server.received] == [mail.message_id, mail.message_id]

    async def test_cancelled_after_the_data_still_records_the_result(
        self, server: SmtpServer, ledger: RedisLedger
    ) -> None:
        """A job cancelled (SIGTERM, time-out) while the 250 is on its way still records it."""
        mailer, mail = _mailer(server.port, ledger), _mail()
        server.recorder.gate = asyncio.Event()
        sending = asyncio.create_task(mailer.send(mail))
        await server.recorder.arrived.wait()
        sending.cancel()
        server.recorder.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await sending
        await mailer.aclose()
        assert (await ledger.digest(MANAGER, WEEK)).state is DigestState.SENT
        assert not (await mailer.send(mail)).sent
        assert len(server.received) == 1

    async def test_another_sender_holds_the_lease(
        self, server: SmtpServer, ledger: RedisLedger
    ) -> None:
        mail = _mail()
        assert await ledger.begin_send(
            MANAGER, WEEK, mail.message_id, token="other", lease_seconds=30
        )
        with pytest.raises(DeliveryError, match="another process") as caught:
            await _mailer(server.port, ledger).send(mail)
        assert caught.value.transient
        assert server.received == []


class TestSendRate:
    """At most N sends per minute per sender, counted in Redis for every worker."""

    async def test_window(self, redis: Redis, ledger: RedisLedger) -> None:
        quotas = SharedQuotas(REDIS_URL, prefix=ledger.prefix)
        rate = SendQuota(quotas, "Kindly@Example.org", per_minute=3)
        waits = [await rate.try_acquire() for _ in range(4)]
        assert waits[:3] == [0, 0, 0]
        assert 0 < waits[3] <= 61
        other = SendQuota(quotas, "other@example.org", per_minute=3)
        assert await other.try_acquire() == 0


class TestFromSettings:
    """The mailer wiring builds for KINDLY_EMAIL__BACKEND=smtp reads settings.smtp."""

    async def test_options(self, tmp_path: Path) -> None:
        settings = Settings(
            email={"backend": "smtp", "from": "kindly@example.org"},
            smtp={
                "host": "mail.example.org",
                "port": 465,
                "use_tls": True,
                "username": "u",
                "password": "p",
                "timeout": 7,
            },
        )
        mailer = from_settings(settings)
        try:
            o = mailer.options
            assert (o.host, o.port, o.use_tls, o.username, o.password, o.timeout) == (
                "mail.example.org",
                465,
                True,
                "u",
                "p",
                7.0,
            )
            assert o.sender == "kindly@example.org"
            assert mailer.rate is not None
            assert mailer.rate.per_minute == 30
        finally:
            await mailer.aclose()
