"""Graph mail delivery and the directory roster against the emulator."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.mail.graph import GraphMailer, SendPace, from_settings
from connectors.mail.outbox import OutboxLedger
from connectors.outlook import directory_roster
from connectors.quota import SendQuota
from service.errors import DeliveryError
from service.ports import OutgoingMail
from tests.emulators.graph import CertificatePair, Fault, GraphEmulator, Organisation
from tests.emulators.graph.limits import Counters, PublishedLimits
from tests.emulators.graph.org import User, user_id
from tests.graph_fixtures import Sleeps, make_client, outlook_settings
from tests.own_redis import OwnRedis, free_port, own_redis

__all__ = ["own_redis"]  # the fixture, imported so pytest finds it

SENDER = "maria@example.com"
MESSAGE_ID = "<kindly-2026-W48-olaf@kindly.example.com>"
#: Monday of 2026-W48, 07:00 UTC: Honolulu is still in W47, Auckland well into W48
NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)


def digest(message_id: str = MESSAGE_ID, week: str = "2026-W48") -> OutgoingMail:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "olaf@example.com"
    message["Subject"] = "Your week"
    message["Message-ID"] = message_id
    message.set_content("Hello Olaf")
    message.add_alternative("<p style='color:#333'>Hello Olaf</p>", subtype="html")
    return OutgoingMail("olaf@example.com", week, message_id, message)


class FakeTime:
    """Monotonic seconds that move only when someone sleeps: no test waits for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def graph_mailer(
    emulator: GraphEmulator, *, pace: SendPace | None = None, sleeps: Sleeps | None = None
) -> GraphMailer:
    """A mailer whose real clock reads NOW (the emulator stamps mail with its own clock)."""
    return GraphMailer(make_client(emulator, sleeps), sender=SENDER, pace=pace, clock=lambda: NOW)


async def sent_before(emulator: GraphEmulator, when: datetime, *ids: str) -> int:
    """Earlier digests in the sender's Sent Items, stamped ``when``; the log's length after."""
    emulator.api.clock = lambda: when
    earlier = graph_mailer(emulator)
    for message_id in ids:
        await earlier.send(digest(message_id))
    await earlier.aclose()
    emulator.api.clock = lambda: NOW
    return len(emulator.log)


def kinds_since(emulator: GraphEmulator, start: int) -> list[str]:
    return [entry.kind for entry in emulator.log[start:] if entry.kind not in ("token", "openid")]


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


class TestSentItemsOncePerRun:
    """prefetch_sent reads the week's Sent Items once; then a digest costs one sendMail."""

    async def test_one_paged_read_then_sends_only(self, emulator: GraphEmulator) -> None:
        await sent_before(emulator, NOW - timedelta(days=14), "<two-weeks-ago@x>")
        start = await sent_before(
            emulator, NOW - timedelta(hours=1), *(f"<d{i}@x>" for i in range(4))
        )
        mailer = graph_mailer(emulator)
        await mailer.prefetch_sent(NOW)
        # four digests this week, two a page; the one of two weeks ago is left out
        assert kinds_since(emulator, start) == ["sentItems", "sentItems"]
        assert not (await mailer.send(digest("<d3@x>"))).sent
        assert (await mailer.send(digest())).sent
        assert not (await mailer.send(digest())).sent  # what it sent is known too
        assert await mailer.already_sent("<d0@x>", manager="olaf@example.com", week="2026-W47")
        await mailer.aclose()
        assert kinds_since(emulator, start) == ["sentItems", "sentItems", "sendMail"]

    async def test_last_week_is_still_read(self, emulator: GraphEmulator) -> None:
        """At NOW a manager in Honolulu is still in W47: its digests must be known too."""
        honolulu = "<kindly-2026-W47-hawaii@x>"
        await sent_before(emulator, datetime(2026, 11, 16, 20, tzinfo=UTC), honolulu)
        mailer = graph_mailer(emulator)
        await mailer.prefetch_sent(NOW)
        start = len(emulator.log)
        assert not (await mailer.send(digest(honolulu, week="2026-W47"))).sent
        await mailer.aclose()
        assert kinds_since(emulator, start) == []

    async def test_other_weeks_are_looked_up(self, emulator: GraphEmulator) -> None:
        mailer = graph_mailer(emulator)
        await mailer.prefetch_sent(NOW)
        start = len(emulator.log)
        assert not await mailer.already_sent(
            MESSAGE_ID, manager="olaf@example.com", week="2026-W50"
        )
        await mailer.aclose()
        assert kinds_since(emulator, start) == ["sentItems"]

    async def test_run_pinned_ahead_of_the_real_clock(self, emulator: GraphEmulator) -> None:
        """--now in a later week: what went out today (real time) is still found."""
        await sent_before(emulator, NOW, "<kindly-2026-W50-olaf@x>")
        mailer = graph_mailer(emulator)
        await mailer.prefetch_sent(NOW + timedelta(weeks=2))
        start = len(emulator.log)
        assert not (await mailer.send(digest("<kindly-2026-W50-olaf@x>", week="2026-W50"))).sent
        await mailer.aclose()
        assert kinds_since(emulator, start) == []

    async def test_unread_sent_items_fall_back_to_one_look_up_each(
        self, emulator: GraphEmulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        emulator.inject(Fault(status=503, kind="sentItems", times=6))  # every attempt fails
        mailer = graph_mailer(emulator)
        with caplog.at_level(logging.WARNING, logger="kindly.graph"):
            await mailer.prefetch_sent(NOW)
        (line,) = caplog.messages
        assert "reading Sent Items" in line
        assert "\n" not in line
        start = len(emulator.log)
        assert (await mailer.send(digest())).sent
        await mailer.aclose()
        assert kinds_since(emulator, start) == ["sentItems", "sendMail"]

    async def test_mailer_without_a_run_is_not_fooled(self, emulator: GraphEmulator) -> None:
        """The worker's mailer lives on: a digest another process sent since is looked up."""
        worker = graph_mailer(emulator)
        assert (await worker.send(digest("<first@x>"))).sent
        await sent_before(emulator, NOW, MESSAGE_ID)
        assert not (await worker.send(digest())).sent
        await worker.aclose()
        assert len(emulator.sent) == 2


class TestSentItemsLag:
    """Exchange may file a digest in Sent Items late: what was sent is recorded in the
    outbox ledger, so an immediate re-run of `kindly run --once` sends nothing again."""

    async def run_once(self, emulator: GraphEmulator, ledger: OutboxLedger | None) -> bool:
        """The mailer as one `kindly run --once` uses it: Sent Items read once, then a send."""
        client = make_client(emulator)
        mailer = GraphMailer(client, sender=SENDER, clock=lambda: NOW, ledger=ledger)
        await mailer.prefetch_sent(NOW)
        result = await mailer.send(digest())
        await mailer.aclose()
        return result.sent

    async def test_an_immediate_rerun_sends_nothing(
        self, emulator: GraphEmulator, tmp_path: Path
    ) -> None:
        emulator.api.sent_items_lag = True
        assert await self.run_once(emulator, OutboxLedger(tmp_path))
        assert not await self.run_once(emulator, OutboxLedger(tmp_path))
        assert len(emulator.sent) == 1
        [line] = (tmp_path / "2026-W48" / "ledger.jsonl").read_text().splitlines()
        assert MESSAGE_ID in line

    async def test_without_the_record_the_lag_sends_twice(self, emulator: GraphEmulator) -> None:
        """What the record is for: Sent Items alone cannot tell while they lag."""
        emulator.api.sent_items_lag = True
        assert await self.run_once(emulator, None)
        assert await self.run_once(emulator, None)
        assert len(emulator.sent) == 2

    async def test_once_filed_sent_items_still_decide(
        self, emulator: GraphEmulator, tmp_path: Path
    ) -> None:
        """Another host's run (its own outbox) finds the digest in Sent Items."""
        emulator.api.sent_items_lag = True
        assert await self.run_once(emulator, OutboxLedger(tmp_path / "one"))
        emulator.api.file_sent_items()
        assert not await self.run_once(emulator, OutboxLedger(tmp_path / "other"))
        assert len(emulator.sent) == 1

    async def test_a_record_that_cannot_be_written_fails_nothing(
        self, emulator: GraphEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        not_a_folder = tmp_path / "outbox"
        not_a_folder.write_text("")
        with caplog.at_level(logging.WARNING, logger="kindly.graph"):
            assert await self.run_once(emulator, OutboxLedger(not_a_folder))
        [line] = caplog.messages
        assert line.startswith("digest for olaf@example.com sent, but not recorded: ")
        assert "KINDLY_EMAIL__OUTBOX_DIR" in line

    async def test_from_settings_records_in_the_outbox(
        self, emulator: GraphEmulator, tmp_path: Path
    ) -> None:
        email = {"backend": "graph", "from": SENDER, "outbox_dir": tmp_path}
        mailer = from_settings(outlook_settings(emulator, email=email))
        await mailer.aclose()
        assert mailer.ledger is not None
        assert mailer.ledger.outbox == tmp_path


class TestSendPace:
    """Sends are paced to the sender's quota; the clock is fake, nothing waits for real."""

    async def test_a_slot_is_free_a_window_after_its_send(self) -> None:
        time = FakeTime()
        pace = SendPace(3, clock=time.clock, sleep=time.sleep)
        starts: list[float] = []

        async def send() -> None:
            async with pace.turn():
                starts.append(time.now)

        await asyncio.gather(*(send() for _ in range(7)))
        assert starts == [0, 0, 0, 60, 60, 60, 120]

    async def test_running_sends_hold_their_slots(self) -> None:
        time = FakeTime()
        pace = SendPace(2, clock=time.clock, sleep=time.sleep)
        answered = asyncio.Event()
        starts: list[float] = []

        async def send() -> None:
            async with pace.turn():
                starts.append(time.now)
                await answered.wait()

        tasks = [asyncio.create_task(send()) for _ in range(3)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert starts == [0, 0]  # the third waits for an answer, however long it takes
        time.now = 7.0  # Graph answers seven seconds later
        answered.set()
        await asyncio.gather(*tasks)
        assert starts == [0, 0, 67]
        assert time.waits == [60]

    async def test_quota_kept_against_published_limits(self, emulator: GraphEmulator) -> None:
        time = FakeTime()
        limits = PublishedLimits(counters=Counters(clock=time.clock))
        emulator.inject(limits)
        sleeps = Sleeps()
        mailer = graph_mailer(
            emulator, pace=SendPace(30, clock=time.clock, sleep=time.sleep), sleeps=sleeps
        )
        digests = [digest(f"<kindly-{i:02d}@x>") for i in range(65)]
        results = await asyncio.gather(*(mailer.send(d) for d in digests))
        await mailer.aclose()
        assert all(result.sent for result in results)
        assert len(emulator.sent) == 65
        assert limits.counters.violations == 0
        assert all(entry.status != 429 for entry in emulator.log)
        assert time.waits == [60, 60]  # 30, 30, then 5 sends
        assert sleeps.waits == []

    async def test_throttled_send_is_retried(self, emulator: GraphEmulator, sleeps: Sleeps) -> None:
        emulator.inject(Fault(status=429, kind="sendMail", retry_after="0.5", times=2))
        mailer = graph_mailer(emulator, sleeps=sleeps)
        assert (await mailer.send(digest())).sent
        await mailer.aclose()
        assert sleeps.waits == [0.5, 0.5]
        assert len(emulator.sent) == 1

    async def test_rate_from_settings(self, emulator: GraphEmulator) -> None:
        """Without an answering Redis, this process paces its own sends."""
        settings = outlook_settings(
            emulator,
            email={"backend": "graph", "from": SENDER},
            limits={"send_per_minute": 12},
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
        )
        mailer = from_settings(settings)
        await mailer.aclose()
        assert isinstance(mailer.pace, SendPace)
        assert mailer.pace.per_minute == 12

    async def test_rate_shared_through_redis(
        self, emulator: GraphEmulator, own_redis: OwnRedis
    ) -> None:
        """With one, every process's sends count against the same quota; its own is the
        fallback."""
        settings = outlook_settings(
            emulator,
            email={"backend": "graph", "from": SENDER},
            limits={"send_per_minute": 12},
            redis_url=own_redis.url,
        )
        mailer = from_settings(settings)
        await mailer.aclose()
        assert isinstance(mailer.pace, SendQuota)
        assert (mailer.pace.per_minute, mailer.pace.sender) == (12, SENDER.lower())
        assert isinstance(mailer.pace.fallback, SendPace)


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

    async def test_internal_and_reserved_domains_are_kept(self, trust: CertificatePair) -> None:
        boss, reports = "boss@corp.local", ["kim@corp.local", "lee@staging.test"]
        users = {boss: User(user_id(boss), boss, "Boss")}
        users |= {r: User(user_id(r), r, r, manager=boss) for r in reports}
        with GraphEmulator(Organisation(users, {}), tls=trust) as emulator:
            client = make_client(emulator)
            roster = await directory_roster(client)
            await client.aclose()
        assert [(m.email, [r.email for r in m.reports]) for m in roster.managers] == [
            (boss, reports)
        ]


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
