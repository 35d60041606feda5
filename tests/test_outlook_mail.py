"""Graph mail delivery and the directory roster against the emulator."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from connectors.graph_mail import GraphMailer
from connectors.outlook import directory_roster
from service.errors import DeliveryError
from service.mailer import OutgoingMail
from tests.emulators.graph import Fault, GraphEmulator
from tests.graph_fixtures import Sleeps, make_client

pytest_plugins = ["tests.graph_fixtures"]

SENDER = "maria@example.com"
MESSAGE_ID = "<kindly-2026-W48-olaf@kindly.example.com>"


def digest() -> OutgoingMail:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "olaf@example.com"
    message["Subject"] = "Your week"
    message["Message-ID"] = MESSAGE_ID
    message.set_content("Hello Olaf")
    message.add_alternative("<p style='color:#333'>Hello Olaf</p>", subtype="html")
    return OutgoingMail("olaf@example.com", "2026-W48", MESSAGE_ID, message)


class TestGraphMailer:
    """sendMail keeps the Message-ID, and Sent Items stop every second copy."""

    async def test_sends_once(self, emulator: GraphEmulator) -> None:
        mailer = GraphMailer(make_client(emulator), sender=SENDER)
        first = await mailer.send(digest())
        again = await mailer.send(digest())
        await mailer.aclose()
        assert first.sent
        assert not again.sent
        (mail,) = emulator.sent
        assert mail.internet_message_id == MESSAGE_ID
        assert mail.to == ("olaf@example.com",)
        assert b"style='color:#333'" in (mail.mime or b"")

    async def test_lost_answer_is_not_sent_twice(
        self, emulator: GraphEmulator, sleeps: Sleeps
    ) -> None:
        emulator.inject(Fault(status=503, kind="sendMail", after=True, times=99))
        mailer = GraphMailer(make_client(emulator, sleeps), sender=SENDER)
        result = await mailer.send(digest())
        await mailer.aclose()
        assert result.sent
        assert len(emulator.sent) == 1
        assert await GraphMailer(make_client(emulator), sender=SENDER).already_sent(
            MESSAGE_ID, manager="olaf@example.com", week="2026-W48"
        )

    async def test_without_mail_send(self, emulator: GraphEmulator) -> None:
        emulator.app.roles = frozenset({"Mail.ReadBasic.All"})
        mailer = GraphMailer(make_client(emulator), sender=SENDER)
        with pytest.raises(DeliveryError, match=r"olaf@example.com.*Mail\.Send") as caught:
            await mailer.send(digest())
        await mailer.aclose()
        assert not caught.value.transient
        assert emulator.sent == []


class TestDirectoryRoster:
    """directReports make the roster: managers with enabled reports, disabled ones skipped."""

    async def test_roster(self, emulator: GraphEmulator) -> None:
        emulator.org.users["ria@example.com"].enabled = False
        client = make_client(emulator)
        roster = await directory_roster(client)
        await client.aclose()
        assert [m.email for m in roster.managers] == ["maria@example.com", "olaf@example.com"]
        assert [r.email for r in roster.managers[0].reports] == ["sam@example.com"]
        assert emulator.count("users") == 3  # five users, two per page
