"""The Google connector with the real client libraries against the Google emulator."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from google.auth.exceptions import TransportError
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from connectors.google import GoogleConnector, from_settings, load_directory_roster
from connectors.google_mapping import hold_body, hold_key_of, roster_from_users, to_event
from connectors.google_transport import Backoff, RateLimiter, Rates, translate
from connectors.mail.outbox import FileMailer
from service.clock import FixedClock
from service.errors import (
    AuthFailed,
    ConfigError,
    ConnectorError,
    ProviderUnavailable,
    RateLimited,
    RosterError,
)
from service.ledger import RedisLedger
from service.model import Event, HoldKey, HoldRequest, Response, Roster, ShowAs, Status
from service.pipeline import RunContext
from service.ports import CalendarConnector
from service.settings import Settings
from service.worker import WorkerState
from tests.emulators.google import KINDLY_SCOPES, Faults, GoogleEmulator
from tests.emulators.google.faults import FaultKind
from tests.emulators.google.limits import PublishedLimits
from tests.emulators.google.org import User
from tests.emulators.graph.certs import make_certificate
from tests.google_fixtures import (
    NO_RETRIES,
    FakeClock,
    RecordedSleep,
    connector_for,
    running,
    vcalendar,
    write_org,
)

AMS = ZoneInfo("Europe/Amsterdam")
UTC = ZoneInfo("UTC")
MARIA, SAM, NOOR = "maria@example.com", "sam@example.com", "noor@example.com"
DAN = "dan@example.com"
START, END = datetime(2026, 11, 1, tzinfo=AMS), datetime(2026, 12, 1, tzinfo=AMS)
PEOPLE = "ORGANIZER:mailto:maria@example.com\nATTENDEE;PARTSTAT=ACCEPTED:mailto:maria@example.com"

MARIA_ICS = vcalendar(
    f"""
    UID:weekly-sam
    SUMMARY:Secret title
    DTSTART;TZID=Europe/Amsterdam:20261102T100000
    DTEND;TZID=Europe/Amsterdam:20261102T103000
    RRULE:FREQ=WEEKLY
    EXDATE;TZID=Europe/Amsterdam:20261109T100000
    {PEOPLE}
    ATTENDEE;PARTSTAT=ACCEPTED:mailto:SAM@example.com
    """,
    """
    UID:weekly-sam
    RECURRENCE-ID;TZID=Europe/Amsterdam:20261116T100000
    DTSTART;TZID=Europe/Amsterdam:20261117T110000
    DTEND;TZID=Europe/Amsterdam:20261117T113000
    ORGANIZER:mailto:maria@example.com
    ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.com
    """,
    """
    UID:weekly-sam
    RECURRENCE-ID;TZID=Europe/Amsterdam:20261123T100000
    DTSTART;TZID=Europe/Amsterdam:20261123T100000
    DTEND;TZID=Europe/Amsterdam:20261123T103000
    STATUS:CANCELLED
    ORGANIZER:mailto:maria@example.com
    ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.com
    """,
    f"""
    UID:noor-once
    SUMMARY:Secret title
    DESCRIPTION:Agreed expectations\\n- ship it
    DTSTART;TZID=Europe/Amsterdam:20261105T140000
    DTEND;TZID=Europe/Amsterdam:20261105T143000
    {PEOPLE}
    ATTENDEE;PARTSTAT=DECLINED:mailto:noor@example.com
    ATTENDEE;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:room-3@example.com
    """,
    """
    UID:away
    DTSTART;VALUE=DATE:20261106
    DTEND;VALUE=DATE:20261107
    X-MICROSOFT-CDO-BUSYSTATUS:OOF
    """,
    """
    UID:lunch
    DTSTART;TZID=Europe/Amsterdam:20261104T120000
    DTEND;TZID=Europe/Amsterdam:20261104T130000
    TRANSP:TRANSPARENT
    """,
    """
    UID:floating
    DTSTART:20261103T090000
    DTEND:20261103T093000
    """,
)
SAM_ICS = vcalendar(
    """
    UID:sam-busy
    DTSTART;TZID=Europe/Amsterdam:20261124T090000
    DTEND;TZID=Europe/Amsterdam:20261124T100000
    """,
    """
    UID:sam-free
    DTSTART;TZID=Europe/Amsterdam:20261124T120000
    DTEND;TZID=Europe/Amsterdam:20261124T130000
    TRANSP:TRANSPARENT
    """,
)


@pytest.fixture
def org(tmp_path: Path) -> Path:
    return write_org(tmp_path / "org", {MARIA: MARIA_ICS, SAM: SAM_ICS})


@pytest.fixture
def google(org: Path) -> Iterator[GoogleEmulator]:
    with running(org, page_size=3) as emulator:
        yield emulator


def hold(report: str = SAM, *, invite: bool = False) -> HoldRequest:
    return HoldRequest(
        key=HoldKey(MARIA, report, "2026-W48"),
        start=datetime(2026, 11, 24, 10, 0, tzinfo=AMS),
        end=datetime(2026, 11, 24, 10, 30, tzinfo=AMS),
        title="1:1 with Sam — time to catch up",
        description="Agenda",
        stamp=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        invite_report=invite,
        timezone="Europe/Amsterdam",
    )


async def read(connector: GoogleConnector, manager: str = MARIA) -> list[Event]:
    return list(await connector.events(manager, START, END, tz=AMS))


async def everything(connector: GoogleConnector) -> tuple[object, ...]:
    """One manager's reads, all in flight at once."""
    return tuple(
        await asyncio.gather(
            read(connector),
            connector.timezone(MARIA),
            connector.busy(MARIA, [SAM, NOOR], START, END, tz=AMS),
        )
    )


class TestProtocol:
    """The connector is a CalendarConnector (checked by mypy) and reports the calendar's zone."""

    async def test_timezone_from_calendar_settings(self, google: GoogleEmulator) -> None:
        connector: CalendarConnector = connector_for(google)
        assert await connector.timezone(MARIA) == AMS
        await connector.aclose()


class TestEventMapping:
    """Google event resources become provider-neutral Events, field by field."""

    @pytest.fixture
    async def events(self, google: GoogleEmulator) -> dict[str, Event]:
        connector = connector_for(google)
        found = await connector.events(MARIA, START, END, tz=UTC)
        await connector.aclose()
        return {e.id: e for e in found}

    def by_start(self, events: dict[str, Event], start: datetime) -> Event:
        return next(e for e in events.values() if e.start == start)

    async def test_recurring_series_expanded_without_the_excluded_date(
        self, events: dict[str, Event]
    ) -> None:
        series = sorted((e for e in events.values() if e.series_id), key=lambda e: e.start)
        assert [e.start.astimezone(AMS).day for e in series] == [2, 17, 23, 30]
        assert len({e.series_id for e in series}) == 1

    async def test_moved_occurrence_keeps_its_original_start(
        self, events: dict[str, Event]
    ) -> None:
        moved = self.by_start(events, datetime(2026, 11, 17, 11, 0, tzinfo=AMS))
        assert moved.original_start == datetime(2026, 11, 16, 10, 0, tzinfo=AMS)
        assert moved.rescheduled

    async def test_cancelled_instance_takes_people_and_length_from_its_series(
        self, events: dict[str, Event]
    ) -> None:
        cancelled = self.by_start(events, datetime(2026, 11, 23, 10, 0, tzinfo=AMS))
        assert cancelled.status is Status.CANCELLED
        assert cancelled.people() == {MARIA, SAM}
        assert cancelled.end - cancelled.start == timedelta(minutes=30)

    async def test_attendees_lower_case_with_answers_and_rooms(
        self, events: dict[str, Event]
    ) -> None:
        weekly = self.by_start(events, datetime(2026, 11, 2, 10, 0, tzinfo=AMS))
        assert weekly.response_of(SAM) is Response.ACCEPTED
        meeting = self.by_start(events, datetime(2026, 11, 5, 14, 0, tzinfo=AMS))
        assert meeting.organizer == MARIA
        assert meeting.response_of(NOOR) is Response.DECLINED
        assert meeting.people() == {MARIA, NOOR}
        assert [a.email for a in meeting.attendees if a.resource] == ["room-3@example.com"]
        assert "Agreed expectations" in meeting.description

    async def test_all_day_spans_midnight_to_midnight_in_the_calendar_zone(
        self, events: dict[str, Event]
    ) -> None:
        away = next(e for e in events.values() if e.all_day)
        assert (away.start, away.end) == (
            datetime(2026, 11, 6, tzinfo=AMS),
            datetime(2026, 11, 7, tzinfo=AMS),
        )
        assert away.show_as is ShowAs.OOF

    async def test_transparent_is_free_and_floating_time_is_in_the_calendar_zone(
        self, events: dict[str, Event]
    ) -> None:
        lunch = self.by_start(events, datetime(2026, 11, 4, 12, 0, tzinfo=AMS))
        assert lunch.show_as is ShowAs.FREE
        assert self.by_start(events, datetime(2026, 11, 3, 9, 0, tzinfo=AMS)).show_as is ShowAs.BUSY

    async def test_titles_are_not_kept(self, events: dict[str, Event]) -> None:
        assert "Secret title" not in repr(list(events.values()))

    async def test_links_come_from_html_link(self, events: dict[str, Event]) -> None:
        assert all(
            e.link and e.link.startswith("https://www.google.com/calendar/event?eid=")
            for e in events.values()
            if not e.cancelled
        )

    @pytest.mark.parametrize(
        ("event_type", "transparency", "show_as"),
        [
            ("focusTime", None, ShowAs.BUSY),
            ("workingLocation", "transparent", ShowAs.FREE),
            ("outOfOffice", None, ShowAs.OOF),
            ("default", "transparent", ShowAs.FREE),
        ],
    )
    async def test_event_types(
        self, google: GoogleEmulator, event_type: str, transparency: str | None, show_as: ShowAs
    ) -> None:
        resource = {
            "id": "typed0001",
            "status": "confirmed",
            "eventType": event_type,
            "start": {"dateTime": "2026-11-10T09:00:00+01:00"},
            "end": {"dateTime": "2026-11-10T12:00:00+01:00"},
            "organizer": {"email": MARIA, "self": True},
        }
        if transparency:
            resource["transparency"] = transparency
        google.add_event(MARIA, resource)
        connector = connector_for(google)
        found = {e.id: e for e in await connector.events(MARIA, START, END, tz=AMS)}
        await connector.aclose()
        assert found["typed0001"].show_as is show_as


class TestPaging:
    """Listings of more than one page are read to the end, one request per page."""

    async def test_every_page_is_read(self, org: Path) -> None:
        with running(org, page_size=2) as small, running(org) as large:
            paged = connector_for(small, page_size=2)
            whole = connector_for(large)
            assert await read(paged) == await read(whole)
            pages = small.counts(MARIA)["events.list"]
            await paged.aclose()
            await whole.aclose()
        assert pages == 4  # 8 occurrences (one cancelled) at 2 per page


class TestHolds:
    """Holds are inserted once with the HoldKey's id; a second call finds the first."""

    async def test_twice_gives_one_hold(self, google: GoogleEmulator) -> None:
        connector = connector_for(google)
        first = await connector.create_hold(MARIA, hold())
        second = await connector.create_hold(MARIA, hold())
        events = await read(connector)
        await connector.aclose()
        assert (first.created, second.created) == (True, False)
        assert (second.start, second.end) == (first.start, first.end) == (hold().start, hold().end)
        [inserted] = google.inserted(MARIA)
        assert inserted["id"] == hold().key.base32hex_id()
        assert inserted["status"] == "tentative"
        assert "attendees" not in inserted
        assert [e.hold_key for e in events if e.hold_key] == [hold().key]

    async def test_an_invited_report_is_an_attendee(self, google: GoogleEmulator) -> None:
        connector = connector_for(google)
        await connector.create_hold(MARIA, hold(invite=True))
        busy = await connector.busy(MARIA, [SAM], START, END, tz=AMS)
        await connector.aclose()
        [inserted] = google.inserted(MARIA)
        assert {a["email"] for a in inserted["attendees"]} == {MARIA, SAM}
        assert any(i.start <= hold().start < hold().end <= i.end for i in busy[SAM] or ())

    async def test_read_only_connector_refuses_to_place(self, google: GoogleEmulator) -> None:
        connector = connector_for(google, holds_enabled=False)
        with pytest.raises(ConnectorError, match="KINDLY_HOLDS__ENABLED"):
            await connector.create_hold(MARIA, hold())
        await connector.aclose()
        assert google.inserted(MARIA) == []


class TestBusy:
    """free/busy comes from freebusy.query; an unknown calendar gives None."""

    async def test_busy_skips_free_time_and_unknown_people(self, google: GoogleEmulator) -> None:
        connector = connector_for(google)
        week = datetime(2026, 11, 23, tzinfo=AMS), datetime(2026, 11, 30, tzinfo=AMS)
        found = await connector.busy(MARIA, [SAM, "stranger@elsewhere.org"], *week, tz=AMS)
        await connector.aclose()
        assert [(i.start, i.end) for i in found[SAM] or ()] == [
            (datetime(2026, 11, 24, 9, tzinfo=AMS), datetime(2026, 11, 24, 10, tzinfo=AMS))
        ]
        assert found["stranger@elsewhere.org"] is None


class TestResilience:
    """Throttling and outages are retried with backoff; other failures are one clear error."""

    @pytest.mark.parametrize("kinds", [("429",), ("503", "500"), ("403-rate", "403-user-rate")])
    async def test_storm_is_survived_with_results_intact(
        self, org: Path, kinds: tuple[FaultKind, ...]
    ) -> None:
        with running(org, page_size=2) as calm, running(org, page_size=2) as stormy:
            stormy.faults = Faults(rate=0.6, kinds=kinds, seed=7)
            sleep = RecordedSleep()
            expected = await everything(connector_for(calm, page_size=2))
            shaken = connector_for(stormy, page_size=2, sleep=sleep, max_concurrency=3)
            # distinct requests at once: the emulator caps the fault streak per request
            results = await everything(shaken)
            await shaken.aclose()
        assert results == expected
        assert sleep.delays
        assert all(0 < d <= 30 for d in sleep.delays)
        failed = [e for e in stormy.log if e.status >= 400]
        assert failed
        assert all(e.status in (429, 500, 503, 403) for e in failed)

    async def test_retry_after_is_honoured(self, google: GoogleEmulator) -> None:
        google.faults = Faults(rate=1.0, kinds=("429",), retry_after=2, max_streak=1)
        sleep = RecordedSleep()
        connector = connector_for(google, sleep=sleep)
        assert await connector.timezone(MARIA) == AMS
        await connector.aclose()
        assert sleep.delays == [2.0]

    @pytest.mark.parametrize(
        ("kind", "raised", "retries"),
        # throttling is retried for over a minute in all: quotas count per minute
        [("503", ProviderUnavailable, 5), ("429", RateLimited, 9)],
    )
    async def test_backoff_grows_then_gives_up(
        self, google: GoogleEmulator, kind: FaultKind, raised: type[Exception], retries: int
    ) -> None:
        google.faults = Faults(rate=1.0, kinds=(kind,), max_streak=100)
        sleep = RecordedSleep()
        connector = connector_for(google, sleep=sleep)
        with pytest.raises(raised, match=MARIA) as caught:
            await connector.timezone(MARIA)
        await connector.aclose()
        assert getattr(caught.value, "transient", False)
        assert len(sleep.delays) == retries
        for attempt, delay in enumerate(sleep.delays, start=1):
            ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
            assert ceiling / 2 <= delay <= ceiling
        assert kind != "429" or sum(sleep.delays) >= 60

    async def test_throttling_is_waited_out_for_a_whole_quota_minute(
        self, google: GoogleEmulator
    ) -> None:
        """A project quota another client used up can stay used up for most of a minute:
        nine refusals in a row (over 45 s of backoff) are still survived."""
        google.faults = Faults(rate=1.0, kinds=("403-rate",), max_streak=9)
        sleep = RecordedSleep()
        connector = connector_for(google, sleep=sleep)
        assert await connector.timezone(MARIA) == AMS
        await connector.aclose()
        assert len(sleep.delays) == 9

    async def test_a_long_retry_after_is_left_to_the_job_retry(
        self, google: GoogleEmulator
    ) -> None:
        google.faults = Faults(rate=1.0, kinds=("429",), retry_after=120, max_streak=100)
        sleep = RecordedSleep()
        connector = connector_for(google, sleep=sleep)
        with pytest.raises(RateLimited) as caught:
            await connector.timezone(MARIA)
        await connector.aclose()
        assert (caught.value.retry_after, sleep.delays) == (120, [])

    async def test_expired_token_is_refreshed_once(self, google: GoogleEmulator) -> None:
        connector = connector_for(google)
        before = await read(connector)
        google.authority.expire_tokens()
        assert await read(connector) == before
        await connector.aclose()
        assert google.counts(MARIA)["token"] == 2
        assert [e.status for e in google.log if e.status == 401] == [401]

    async def test_unknown_manager_is_one_clear_line(self, google: GoogleEmulator) -> None:
        connector = connector_for(google)
        with pytest.raises(AuthFailed) as caught:
            await connector.events("ghost@example.com", START, END, tz=AMS)
        await connector.aclose()
        message = str(caught.value)
        assert "ghost@example.com" in message
        assert "\n" not in message
        assert caught.value.manager == "ghost@example.com"

    async def test_revoked_scope_names_the_scope_to_grant(self, google: GoogleEmulator) -> None:
        connector = connector_for(
            google, scopes=KINDLY_SCOPES - {"https://www.googleapis.com/auth/calendar.events"}
        )
        with pytest.raises(AuthFailed) as caught:
            await connector.create_hold(MARIA, hold())
        await connector.aclose()
        assert "calendar.events" in str(caught.value)
        assert "domain-wide delegation" in str(caught.value).lower()

    async def test_other_managers_still_run(self, google: GoogleEmulator) -> None:
        connector = connector_for(google)
        results = await asyncio.gather(
            read(connector), read(connector, "ghost@example.com"), return_exceptions=True
        )
        await connector.aclose()
        assert isinstance(results[0], list)
        assert results[0]
        assert isinstance(results[1], AuthFailed)


Slot = tuple[float, str]


def crowded(slots: list[Slot], user: str, now: float, rates: Rates) -> float | None:
    """When the first free slot is, if one at ``now`` would go over a limit (else None)."""
    span = rates.window + rates.slack
    free: float | None = None
    mine = [s for s in slots if s[1] == user]
    for limit, counted in ((rates.per_project, slots), (rates.per_user, mine)):
        recent = sorted(at for at, _ in counted if at > now - span)
        if len(recent) >= limit:
            free = max(free or now, recent[-limit] + span)
    return free


def assert_within(slots: list[Slot], rates: Rates) -> None:
    """No ``window + slack`` ending at a slot (where the most are) holds more than a limit."""
    span = rates.window + rates.slack
    for at, user in slots:
        inside = [s for s in slots if at - span < s[0] <= at]
        assert len(inside) <= rates.per_project
        assert sum(1 for s in inside if s[1] == user) <= rates.per_user


class TestRateLimiter:
    """Slots are paced to the per-user and per-project limits, and free under them."""

    @given(
        per_user=st.integers(1, 4),
        per_project=st.integers(1, 6),
        steps=st.lists(
            st.tuples(st.floats(0, 4, allow_nan=False), st.sampled_from([MARIA, SAM, NOOR])),
            max_size=40,
        ),
    )
    def test_no_window_holds_more_than_the_limit_and_none_waits_under_it(
        self, per_user: int, per_project: int, steps: list[tuple[float, str]]
    ) -> None:
        rates = Rates(per_user=per_user, per_project=per_project, window=10.0, slack=0.5)
        clock = FakeClock()
        limiter = RateLimiter(rates, clock=clock, sleep=clock.sleep)
        slots: list[Slot] = []
        for gap, user in steps:
            clock.advance(gap)
            asked = clock()
            free = crowded(slots, user, asked, rates)
            at = limiter.acquire(user)
            assert at == clock()
            if free is None:
                assert at == asked
            else:  # waits exactly until the oldest slot in the way has left
                assert at == pytest.approx(free)
            slots.append((at, user))
        assert_within(slots, rates)

    def test_threads_share_the_limits(self) -> None:
        rates = Rates(per_user=3, per_project=5, window=10.0, slack=0.5)
        clock = FakeClock()
        limiter = RateLimiter(rates, clock=clock, sleep=clock.sleep)
        slots: list[Slot] = []
        lock = threading.Lock()

        def work(user: str) -> None:
            for _ in range(12):
                at = limiter.acquire(user)
                with lock:
                    slots.append((at, user))

        threads = [threading.Thread(target=work, args=(u,)) for u in (MARIA, MARIA, SAM, NOOR)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(slots) == 48
        assert_within(sorted(slots), rates)

    def test_an_idle_user_starts_afresh(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(
            Rates(per_user=1, window=10.0, slack=0.0), clock=clock, sleep=clock.sleep
        )
        first = limiter.acquire(MARIA)
        clock.advance(10.0)
        assert limiter.acquire(SAM) == limiter.acquire(MARIA) == first + 10.0
        assert clock.slept == []

    @pytest.mark.parametrize("rates", [{"per_user": 0}, {"per_project": -1}, {"window": 0}])
    def test_nonsense_rates_are_refused(self, rates: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            Rates(**rates)  # type: ignore[arg-type]


class TestPacedAgainstPublishedLimits:
    """Against the emulator's published limits, scaled down: a burst goes over unpaced
    and stays under paced (real time, a fraction of a second)."""

    async def burst(
        self, google: GoogleEmulator, window: float, rates: Rates
    ) -> list[ZoneInfo | BaseException | None]:
        """Four requests as Maria and two as Dan at once, after a warm-up that fetches
        tokens and starts every worker thread, so only the burst meets the limits."""
        connector = connector_for(google, rates=rates, max_concurrency=6, backoff=NO_RETRIES)
        people = [MARIA, MARIA, MARIA, MARIA, DAN, DAN]
        await asyncio.gather(*(connector.timezone(p) for p in people))
        google.faults = PublishedLimits(per_user=2, per_project=3, window=window)
        found = await asyncio.gather(
            *(connector.timezone(p) for p in people), return_exceptions=True
        )
        await connector.aclose()
        return found

    async def test_unpaced_goes_over(self, google: GoogleEmulator) -> None:
        lifted = Rates(per_user=1000, per_project=1000)
        found = await self.burst(google, 60.0, lifted)
        limits = google.faults
        assert isinstance(limits, PublishedLimits)
        assert limits.violations > 0
        assert any(isinstance(f, RateLimited) for f in found)

    async def test_paced_stays_under(self, google: GoogleEmulator) -> None:
        paced = Rates(per_user=2, per_project=3, window=0.1, slack=0.1)
        found = await self.burst(google, 0.1, paced)
        limits = google.faults
        assert isinstance(limits, PublishedLimits)
        assert limits.violations == 0
        assert found[:4] == [AMS] * 4
        assert not [f for f in found if isinstance(f, BaseException)]
        assert all(e.status < 400 for e in google.log)


def settings_for(google: GoogleEmulator, tmp_path: Path, **google_settings: object) -> Settings:
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps(google.service_account()))
    return Settings(
        calendar="google",
        google={
            "service_account_file": key_file,
            "api_endpoint": google.base_url,
            **google_settings,
        },
    )


class TestSettings:
    """from_settings builds a working connector or says which variable to fix."""

    async def test_from_settings_reads_the_key_file(
        self, google: GoogleEmulator, tmp_path: Path
    ) -> None:
        connector = from_settings(settings_for(google, tmp_path))
        assert await connector.timezone(MARIA) == AMS
        await connector.aclose()

    @pytest.mark.parametrize("content", [None, "not json", '{"type": "service_account"}'])
    def test_missing_or_bad_key_file(self, tmp_path: Path, content: str | None) -> None:
        path = tmp_path / "key.json"
        if content is not None:
            path.write_text(content)
        settings = Settings(calendar="google", google={"service_account_file": path})
        with pytest.raises(ConfigError, match="KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE"):
            from_settings(settings)

    async def test_request_rates_come_from_settings(
        self, google: GoogleEmulator, tmp_path: Path
    ) -> None:
        settings = settings_for(
            google, tmp_path, requests_per_minute_per_user=5, requests_per_minute=70
        )
        connector = from_settings(settings)
        await connector.aclose()
        assert connector.rates == Rates(per_user=5, per_project=70)
        assert from_settings(settings_for(google, tmp_path)).rates == Rates(600, 10_000)

    def test_unset_key_file(self) -> None:
        with pytest.raises(ConfigError, match="KINDLY_GOOGLE__SERVICE_ACCOUNT_FILE is not set"):
            from_settings(Settings(calendar="google"))


@pytest.fixture
def https_google(org: Path, tmp_path: Path) -> Iterator[tuple[GoogleEmulator, Path]]:
    """The emulator on HTTPS with a self-signed certificate; the path is its CA bundle."""
    tls = make_certificate(tmp_path / "tls")
    with running(org, tls=tls) as emulator:
        yield emulator, tls.cert


class TestTrust:
    """HTTPS trusts the standard CA-bundle variables, and an untrusted certificate is
    one clear error that is not retried."""

    async def test_ca_bundle_variable_is_trusted(
        self,
        https_google: tuple[GoogleEmulator, Path],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        google, bundle = https_google
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        connector = from_settings(settings_for(google, tmp_path))
        assert google.base_url.startswith("https://")
        assert await connector.timezone(MARIA) == AMS
        await connector.aclose()

    async def test_untrusted_certificate_names_the_variables(
        self,
        https_google: tuple[GoogleEmulator, Path],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        google, _ = https_google
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.delenv(name, raising=False)
        connector = from_settings(settings_for(google, tmp_path))
        with pytest.raises(ConnectorError, match="REQUESTS_CA_BUNDLE or SSL_CERT_FILE") as caught:
            await connector.timezone(MARIA)
        await connector.aclose()
        assert not caught.value.transient
        assert google.counts() == Counter()  # refused at the handshake, never asked

    @pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "inside-google-auth"])
    def test_a_trust_failure_is_never_retried(self, wrapped: bool) -> None:
        failure = ssl.SSLCertVerificationError(1, "certificate verify failed")
        failure.verify_message = "self-signed certificate"
        exc: Exception = failure
        if wrapped:
            # google-auth ships without annotations on its exceptions
            exc = TransportError(failure)  # type: ignore[no-untyped-call]
            exc.__cause__ = failure
        error = translate(exc, subject=MARIA, what="list calendar events")
        assert not error.transient
        assert "self-signed certificate" in str(error)
        assert error.manager == MARIA

    def test_missing_bundle_file_is_a_config_error(
        self, google: GoogleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "nowhere.pem"))
        with pytest.raises(ConfigError, match=r"REQUESTS_CA_BUNDLE/SSL_CERT_FILE=.*nowhere\.pem"):
            from_settings(settings_for(google, tmp_path))


class TestDirectoryRoster:
    """The Directory's manager relations become the roster; suspended users are skipped."""

    async def test_managers_and_reports(self, org: Path, tmp_path: Path) -> None:
        with running(org, directory_page_size=2) as google:
            google.org.users["ava@example.com"].suspended = True
            settings = settings_for(google, tmp_path, admin_subject="admin@example.com")
            roster = await load_directory_roster(settings)
            pages = google.counts("admin@example.com")["users.list"]
        assert [(m.email, [r.email for r in m.reports]) for m in roster.managers] == [
            (MARIA, [NOOR, SAM])
        ]
        assert roster.managers[0].name == "Maria Jansen"
        assert pages == 3  # 6 users at 2 per page

    async def test_a_worker_reads_it_again_at_every_planning_run(
        self, org: Path, tmp_path: Path
    ) -> None:
        with running(org) as google:
            settings = settings_for(google, tmp_path, admin_subject="admin@example.com")
            settings = settings.model_copy(update={"roster_source": "directory"})
            state = WorkerState(
                settings,
                Roster(()),
                RunContext(settings, from_settings(settings), FileMailer(tmp_path)),
                RedisLedger(Redis()),  # not used by the roster: never connects
                FixedClock(datetime(2026, 11, 23, 7, tzinfo=UTC)),
            )
            await state.follow_roster()
            before = [m.email for m in state.roster.managers]
            assert MARIA in before
            assert SAM not in before
            google.org.users["lena@example.com"] = User("lena@example.com", "Lena", manager=SAM)
            google.org.version += 1
            await state.follow_roster()
            await state.run.connector.aclose()
            listings = google.counts("admin@example.com")["users.list"]
        assert [m.email for m in state.roster.managers] == sorted([*before, SAM])
        assert listings == 2

    def test_internal_and_reserved_domains_are_kept(self) -> None:
        users = [
            {"primaryEmail": "boss@corp.local"},
            {
                "primaryEmail": "kim@staging.test",
                "relations": [{"type": "manager", "value": "boss@corp.local"}],
            },
        ]
        roster = roster_from_users(users, source="Google Directory")
        assert [(m.email, [r.email for r in m.reports]) for m in roster.managers] == [
            ("boss@corp.local", ["kim@staging.test"])
        ]

    async def test_a_non_admin_subject_is_a_roster_error(
        self, google: GoogleEmulator, tmp_path: Path
    ) -> None:
        settings = settings_for(google, tmp_path, admin_subject=MARIA)
        with pytest.raises(RosterError, match="Google Directory"):
            await load_directory_roster(settings)

    async def test_admin_subject_is_required(self, google: GoogleEmulator, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="KINDLY_GOOGLE__ADMIN_SUBJECT"):
            await load_directory_roster(settings_for(google, tmp_path))


class TestPureRules:
    """Properties of the pure mapping and backoff."""

    @given(
        manager=st.emails(),
        report=st.emails(),
        week=st.from_regex(r"20[2-9][0-9]-W[0-5][0-9]", fullmatch=True),
    )
    def test_hold_key_round_trips_through_the_event_body(
        self, manager: str, report: str, week: str
    ) -> None:
        key = HoldKey(manager.lower(), report.lower(), week)
        request = HoldRequest(key, START, START + timedelta(minutes=30), "t", "d", stamp=START)
        body = hold_body(request, manager)
        assert hold_key_of(body) == key
        assert 5 <= len(body["id"]) <= 1024
        assert set(body["id"]) <= set("0123456789abcdefghijklmnopqrstuv")

    @given(
        moment=st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.sampled_from([timezone(timedelta(minutes=m)) for m in (-300, 0, 330, 60)]),
        )
    )
    def test_date_times_keep_their_instant(self, moment: datetime) -> None:
        item = {
            "id": "x1234",
            "start": {"dateTime": moment.isoformat()},
            "end": {"dateTime": (moment + timedelta(hours=1)).isoformat()},
        }
        event = to_event(item, zone=AMS)
        assert (event.start, event.end - event.start) == (moment, timedelta(hours=1))

    @given(attempt=st.integers(1, 20), rand=st.floats(0, 1))
    def test_backoff_stays_within_its_bounds(self, attempt: int, rand: float) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff.delay(attempt, None, lambda: rand) <= ceiling
        assert backoff.delay(attempt, 3.0, lambda: rand) == 3.0
