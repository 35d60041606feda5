"""Graph mail delivery and the directory roster against the emulator."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from connectors.graph_mail import GraphMailer
from connectors.outlook import directory_roster
from service.errors import DeliveryError
from service.mailer import OutgoingMail
from tests.emulators.graph import CertificatePair, Fault, GraphEmulator, Organisation
from tests.emulators.graph.org import User, user_id
from tests.graph_fixtures import Sleeps, make_client

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
        assert emulator.count("directReports") == 4  # the four enabled users, in one $batch
        assert emulator.count("batch") == 1


def big_org(managers: int = 3, reports: int = 19) -> Organisation:
    """Managers with many reports: more users than one $batch holds, more reports than a page."""
    users: dict[str, User] = {}
    for m in range(managers):
        boss = f"boss{m}@example.com"
        users[boss] = User(user_id(boss), boss, f"Boss {m}")
        for r in range(reports):
            email = f"r{m}-{r:02d}@example.com"
            users[email] = User(user_id(email), email, f"Report {m}-{r}", manager=boss)
    return Organisation(users, {})


class TestDirectoryBatching:
    """directReports go out in $batch requests: far fewer round trips, the same roster."""

    async def test_same_roster_as_one_call_per_user(self, emulator: GraphEmulator) -> None:
        client = make_client(emulator)
        batched = await directory_roster(client)
        trips = emulator.round_trips()
        users = await client.pages("/users", mailbox=None, what="users", permission="User.Read.All")
        expected = []
        for user in users:
            reports = await client.pages(
                f"/users/{user['id']}/directReports",
                mailbox=None,
                what="reports",
                permission="User.Read.All",
            )
            if reports:
                expected.append((user["mail"], [r["mail"] for r in reports]))
        await client.aclose()
        assert [(m.email, [r.email for r in m.reports]) for m in batched.managers] == expected
        assert trips < emulator.round_trips() - trips

    async def test_many_users_and_pages(self, trust: CertificatePair) -> None:
        with GraphEmulator(big_org(), tls=trust, page_size=10) as emulator:
            client = make_client(emulator)
            roster = await directory_roster(client)
            await client.aclose()
        assert [m.email for m in roster.managers] == [f"boss{m}@example.com" for m in range(3)]
        assert [len(m.reports) for m in roster.managers] == [19, 19, 19]
        assert roster.managers[2].reports[18].email == "r2-18@example.com"
        # 60 users: three batches of at most 20; then each boss's second page, in one more
        assert emulator.count("directReports") == 63
        assert emulator.count("batch") == 4
        assert all(e.batched for e in emulator.log if e.kind == "directReports")
        assert max(emulator.peak.values()) <= 4

    async def test_throttled_part_retried_alone(
        self, emulator: GraphEmulator, sleeps: Sleeps
    ) -> None:
        emulator.inject(
            Fault(status=429, kind="directReports", mailbox="olaf@example.com", retry_after="0.05")
        )
        client = make_client(emulator, sleeps)
        roster = await directory_roster(client)
        await client.aclose()
        assert [m.email for m in roster.managers] == ["maria@example.com", "olaf@example.com"]
        assert sleeps.waits == [0.05]
        assert emulator.count("directReports", "olaf@example.com") == 2
        assert emulator.count("directReports") == 6
