"""The Graph emulator's published limits (tests/emulators/graph/limits.py and its concurrency
cap): what the benchmark's "published" mode holds Kindly to, on a pinned clock."""

from __future__ import annotations

import base64
import concurrent.futures
from email.message import EmailMessage

import pytest
import requests

from tests.emulators.graph import GraphEmulator, Stall
from tests.emulators.graph.limits import (
    PER_MAILBOX_PER_10_MINUTES,
    SENDS_PER_MINUTE,
    Counters,
    PublishedLimits,
)

SENDER = "maria@example.com"


class PinnedClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> PinnedClock:
    return PinnedClock()


@pytest.fixture
def limits(clock: PinnedClock) -> PublishedLimits:
    return PublishedLimits(counters=Counters(clock=clock))


def over(limits: PublishedLimits, kind: str, mailbox: str | None, times: int) -> list[bool]:
    return [limits.matches(kind, mailbox) for _ in range(times)]


class TestSendsPerMinute:
    """30 messages a minute per sender mailbox; the 31st is refused and counted."""

    def test_the_thirty_first_send_is_refused(self, limits: PublishedLimits) -> None:
        assert over(limits, "sendMail", SENDER, SENDS_PER_MINUTE) == [False] * 30
        assert limits.matches("sendMail", SENDER)
        assert limits.counters.violations == 1

    def test_a_minute_later_sends_go_again(
        self, limits: PublishedLimits, clock: PinnedClock
    ) -> None:
        over(limits, "sendMail", SENDER, SENDS_PER_MINUTE)
        clock.now += 59.999
        assert limits.matches("sendMail", SENDER)
        clock.now += 60.0
        assert not any(over(limits, "sendMail", SENDER, SENDS_PER_MINUTE))

    def test_per_sender_and_sends_only(self, limits: PublishedLimits) -> None:
        over(limits, "sendMail", SENDER, SENDS_PER_MINUTE)
        assert not limits.matches("sendMail", "kindly@example.com")
        assert not any(over(limits, "sentItems", SENDER, 100))
        assert limits.counters.violations == 0


class TestRequestsPerTenMinutes:
    """10,000 requests per mailbox in any 10 minutes, whatever their kind."""

    def test_the_ten_thousand_and_first_is_refused(
        self, limits: PublishedLimits, clock: PinnedClock
    ) -> None:
        assert not any(over(limits, "calendarView", SENDER, PER_MAILBOX_PER_10_MINUTES))
        assert limits.matches("getSchedule", SENDER)
        assert not limits.matches("calendarView", "olaf@example.com")
        clock.now += 600.0
        assert not limits.matches("calendarView", SENDER)

    def test_tenant_wide_requests_are_not_counted(self, limits: PublishedLimits) -> None:
        assert not any(over(limits, "users", None, 20))
        assert limits.counters.violations == 0


def send_mail(emulator: GraphEmulator, token: str, number: int) -> requests.Response:
    message = EmailMessage()
    message["To"], message["Subject"] = "olaf@example.com", f"Digest {number}"
    message["Message-ID"] = f"<digest-{number}@example.com>"
    message.set_content("Hello")
    return requests.post(
        f"{emulator.graph_endpoint}/users/{SENDER}/sendMail",
        data=base64.b64encode(message.as_bytes()),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        timeout=10,
    )


def app_token(emulator: GraphEmulator) -> str:
    app = emulator.app
    answer = requests.post(
        f"{emulator.origin}/{app.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=10,
    )
    return str(answer.json()["access_token"])


class TestOverTheWire:
    """Injected into the emulator, the limits answer 429 with Retry-After, as Graph does."""

    def test_send_quota(
        self, emulator: GraphEmulator, limits: PublishedLimits, clock: PinnedClock
    ) -> None:
        emulator.inject(limits)
        token = app_token(emulator)
        statuses = [send_mail(emulator, token, n).status_code for n in range(30)]
        refused = send_mail(emulator, token, 30)
        assert statuses == [202] * 30
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "TooManyRequests"
        clock.now += 60.0
        assert send_mail(emulator, token, 31).status_code == 202
        assert len(emulator.sent) == 31
        assert limits.counters.violations == 1


class TestMailboxConcurrency:
    """Four requests in flight per mailbox; a fifth is refused at once, other mailboxes not."""

    def test_fifth_request_refused(self, emulator: GraphEmulator) -> None:
        token = app_token(emulator)
        headers = {"Authorization": f"Bearer {token}"}

        def settings_of(mailbox: str) -> requests.Response:
            url = f"{emulator.graph_endpoint}/users/{mailbox}/mailboxSettings"
            return requests.get(url, headers=headers, timeout=30)

        stall = emulator.stall = Stall()
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            held = [pool.submit(settings_of, SENDER) for _ in range(4)]
            stall.wait_for(4)
            fifth = settings_of(SENDER)
            other = pool.submit(settings_of, "olaf@example.com")
            stall.wait_for(1)  # olaf's request got past the limit and is served
            stall.release()
            answers = [future.result() for future in held]
        assert fifth.status_code == 429
        assert "MailboxConcurrency" in fifth.json()["error"]["message"]
        assert [a.status_code for a in answers] == [200] * 4
        assert other.result().status_code == 200
        assert emulator.peak[SENDER] == 5
