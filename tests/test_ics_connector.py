"""The ICS connector against real exports in tests/calendars/; holds go to tmp_path."""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from multiprocessing.synchronize import Barrier
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.ics import IcsConnector, from_settings, hold_uid
from service.errors import CalendarDataError
from service.meetings import is_one_on_one
from service.model import (
    Attendee,
    Event,
    HoldKey,
    HoldRequest,
    Interval,
    Response,
    ShowAs,
    Status,
)
from service.ports import CalendarConnector
from service.settings import IcsSettings, Settings

CALENDARS = Path(__file__).parent / "calendars"
AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
STAMP = datetime(2026, 11, 23, 8, 0, tzinfo=AMS)
MANAGER = "maria@example.com"
SERIES = "1on1-maria-sam@example.com"
# Outlook's UIDs for the events in tom@example.com.ics
_OUTLOOK = "040000008200E00074C5B7101A82E00800000000{}1B2C3D4E5F60708090A0B0C0D0E0F10"
VACATION, REVIEW, FOCUS, TOM_LISA, VISIT = (_OUTLOOK.format(letter) for letter in "ABCDE")
LUNCH = "lunch-walk@example.com"


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: tzinfo = AMS
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


OCTOBER, DECEMBER = at(2026, 10, 1), at(2026, 12, 1)
TUESDAY_TEN = at(2026, 11, 24, 10)


async def read(
    connector: IcsConnector,
    manager: str,
    start: datetime = OCTOBER,
    end: datetime = DECEMBER,
    tz: ZoneInfo = AMS,
) -> list[Event]:
    return list(await connector.events(manager, start, end, tz=tz))


def only(events: Sequence[Event], id_: str) -> Event:
    [event] = [e for e in events if e.id == id_]
    return event


def hold(
    report: str = "sam@example.com",
    week: str = "2026-W48",
    start: datetime = TUESDAY_TEN,
    *,
    invite_report: bool = False,
    title: str = "Time for you and Sam",
    description: str = "How are you doing?\nWhat is on your mind?",
) -> HoldRequest:
    return HoldRequest(
        key=HoldKey(MANAGER, report, week),
        start=start,
        end=start + timedelta(minutes=30),
        title=title,
        description=description,
        stamp=STAMP,
        invite_report=invite_report,
        timezone="Europe/Amsterdam",
    )


@pytest.fixture
def connector(tmp_path: Path) -> IcsConnector:
    return IcsConnector(CALENDARS, tmp_path / "holds")


class TestConstruction:
    """The connector fits the CalendarConnector Protocol and is built from KINDLY_ICS__ settings."""

    async def test_fits_the_protocol(self, tmp_path: Path) -> None:
        connector: CalendarConnector = IcsConnector(CALENDARS, tmp_path)  # checked by mypy
        for name in ("timezone", "events", "busy", "create_hold", "aclose"):
            assert inspect.iscoroutinefunction(getattr(IcsConnector, name)), name
        await connector.aclose()

    def test_from_settings(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)  # no .env, and no KINDLY_ variable from the shell
        for name in [name for name in os.environ if name.startswith("KINDLY_")]:
            monkeypatch.delenv(name)
        ics = IcsSettings(dir=tmp_path / "cals", max_file_bytes=123, max_occurrences=45)
        connector = from_settings(Settings(ics=ics))
        assert connector.directory == tmp_path / "cals"
        assert connector.holds_dir == tmp_path / "cals" / "holds"
        assert (connector.max_file_bytes, connector.max_occurrences) == (123, 45)


class TestRecurringSeries:
    """A weekly 1:1 expands with its EXDATE, a moved and a cancelled override (Apple export)."""

    async def test_worked_example(self, connector: IcsConnector) -> None:
        events = await read(connector, MANAGER, at(2026, 10, 1), at(2026, 11, 15))
        assert [(e.start, e.status, e.original_start) for e in events] == [
            (at(2026, 10, 5, 10), Status.CONFIRMED, None),
            (at(2026, 10, 20, 14), Status.CONFIRMED, at(2026, 10, 19, 10)),
            (at(2026, 10, 26, 10), Status.CONFIRMED, None),
            (at(2026, 11, 2, 10), Status.CONFIRMED, None),
            (at(2026, 11, 9, 10), Status.CANCELLED, at(2026, 11, 9, 10)),
        ]

    async def test_exdate_removes_the_occurrence(self, connector: IcsConnector) -> None:
        events = await read(connector, MANAGER, at(2026, 10, 12), at(2026, 10, 13))
        assert events == []

    async def test_moved_occurrence(self, connector: IcsConnector) -> None:
        events = await read(connector, MANAGER, at(2026, 10, 19), at(2026, 10, 21))
        [moved] = events
        assert moved.id == f"{SERIES}/20261019T080000Z"
        assert (moved.start, moved.end) == (at(2026, 10, 20, 14), at(2026, 10, 20, 14, 30))
        assert moved.original_start == at(2026, 10, 19, 10)
        assert moved.rescheduled

    async def test_moved_into_the_window_from_outside(self, connector: IcsConnector) -> None:
        events = await read(connector, MANAGER, at(2026, 10, 20), at(2026, 10, 21))
        assert [e.original_start for e in events] == [at(2026, 10, 19, 10)]

    async def test_cancelled_override_replaces_the_occurrence(
        self, connector: IcsConnector
    ) -> None:
        [cancelled] = await read(connector, MANAGER, at(2026, 11, 9), at(2026, 11, 10))
        assert cancelled.status is Status.CANCELLED
        assert cancelled.id == f"{SERIES}/20261109T090000Z"
        assert not cancelled.rescheduled

    async def test_occurrences_carry_series_and_unique_ids(self, connector: IcsConnector) -> None:
        events = await read(connector, MANAGER, at(2026, 10, 1), at(2026, 12, 31))
        assert {e.series_id for e in events} == {SERIES}
        assert len({e.id for e in events}) == len(events) == 11
        generated = only(events, f"{SERIES}/20261130T090000Z")
        assert generated.original_start is None


class TestDaylightSavingTime:
    """A weekly 10:00 1:1 stays at 10:00 Amsterdam time across 25 October 2026."""

    @pytest.mark.parametrize(
        ("manager", "tz", "days"),
        [
            pytest.param("maria@example.com", NYC, [(10, 5), (10, 26), (11, 2)], id="TZID"),
            pytest.param(
                "anouk@example.com",
                NYC,
                [(10, 12), (10, 19), (10, 26), (11, 2)],
                id="UTC with X-WR-TIMEZONE",
            ),
            pytest.param(
                "ines@example.com", AMS, [(10, 19), (10, 26), (11, 2)], id="floating in tz"
            ),
        ],
    )
    async def test_stays_at_ten(
        self, connector: IcsConnector, manager: str, tz: ZoneInfo, days: list[tuple[int, int]]
    ) -> None:
        events = await read(connector, manager, at(2026, 10, 5), at(2026, 11, 3), tz=tz)
        mondays = [e.start for e in events if e.series_id and e.start.weekday() == 0]
        assert mondays == [at(2026, month, day, 10) for month, day in days]
        assert [m.astimezone(AMS).utcoffset() for m in (mondays[0], mondays[-1])] == [
            timedelta(hours=2),
            timedelta(hours=1),
        ]


class TestTimeZones:
    """TZID, floating, UTC and all-day times land in the named zone, else the calendar's or tz."""

    @pytest.mark.parametrize("tz", [AMS, NYC], ids=str)
    async def test_tzid_and_utc_ignore_the_callers_zone(
        self, connector: IcsConnector, tz: ZoneInfo
    ) -> None:
        events = await read(connector, "ines@example.com", tz=tz)
        assert only(events, "zoned@example.com").start == at(2026, 11, 10, 9, tz=NYC)
        assert only(events, "zoned@example.com").start == at(2026, 11, 10, 15, tz=AMS)
        assert only(events, "utc@example.com").start == at(2026, 11, 10, 9, tz=UTC)

    @pytest.mark.parametrize("tz", [AMS, NYC], ids=str)
    async def test_floating_and_all_day_use_the_callers_zone(
        self, connector: IcsConnector, tz: ZoneInfo
    ) -> None:
        events = await read(connector, "ines@example.com", tz=tz)
        floating = only(events, "floating@example.com")
        assert floating.start == at(2026, 11, 10, 9, tz=tz)
        assert floating.end == at(2026, 11, 10, 9, 30, tz=tz)
        assert not floating.all_day
        all_day = only(events, "all-day@example.com")
        assert all_day.all_day
        assert (all_day.start, all_day.end) == (at(2026, 11, 11, tz=tz), at(2026, 11, 13, tz=tz))

    async def test_x_wr_timezone_wins_over_the_callers_zone(self, connector: IcsConnector) -> None:
        events = await read(connector, "anouk@example.com", tz=NYC)
        assert only(events, "floating-retro@google.com").start == at(2026, 11, 4, 15, tz=AMS)
        offsite = only(events, "offsite@google.com")
        assert (offsite.start, offsite.end, offsite.all_day) == (
            at(2026, 11, 5, tz=AMS),
            at(2026, 11, 6, tz=AMS),
            True,
        )

    async def test_windows_zone_from_the_files_vtimezone(self, connector: IcsConnector) -> None:
        events = await read(connector, "tom@example.com")
        assert only(events, REVIEW).start == at(2026, 11, 10, 13, tz=UTC)

    async def test_out_of_office_all_day_spans_whole_days_in_the_zone(
        self, connector: IcsConnector
    ) -> None:
        events = await read(connector, "tom@example.com", tz=AMS)
        vacation = only(events, VACATION)
        assert vacation.all_day
        assert vacation.show_as is ShowAs.OOF
        assert (vacation.start, vacation.end) == (at(2026, 11, 16), at(2026, 11, 19))


class TestWindow:
    """Only occurrences overlapping [start, end) are returned, whatever their zone."""

    @pytest.mark.parametrize(
        ("start", "end", "found"),
        [
            (at(2026, 11, 10, 15, 30), at(2026, 11, 10, 18), False),  # ends at start
            (at(2026, 11, 10, 12), at(2026, 11, 10, 15), False),  # starts at end
            (at(2026, 11, 10, 15, 29), at(2026, 11, 10, 15, 31), True),
            (at(2026, 11, 10, 15, 10), at(2026, 11, 10, 15, 20), True),  # inside it
        ],
    )
    async def test_half_open_overlap(
        self, connector: IcsConnector, start: datetime, end: datetime, found: bool
    ) -> None:
        events = await read(connector, "ines@example.com", start, end)
        assert ("zoned@example.com" in {e.id for e in events}) is found

    async def test_all_day_overlap_is_judged_in_the_zone(self, connector: IcsConnector) -> None:
        before = await read(connector, "ines@example.com", at(2026, 11, 10, 20), at(2026, 11, 11))
        assert "all-day@example.com" not in {e.id for e in before}
        inside = await read(connector, "ines@example.com", at(2026, 11, 12, 23), at(2026, 11, 13))
        assert "all-day@example.com" in {e.id for e in inside}


class TestMapping:
    """Status, free/busy, people, description and identity map onto the domain model (Outlook)."""

    @pytest.fixture
    async def tom(self, connector: IcsConnector) -> dict[str, Event]:
        return {e.id: e for e in await read(connector, "tom@example.com")}

    async def test_tentative_status_and_busy_status(self, tom: dict[str, Event]) -> None:
        assert tom[TOM_LISA].status is Status.TENTATIVE
        assert tom[TOM_LISA].show_as is ShowAs.TENTATIVE
        assert tom[REVIEW].status is Status.CONFIRMED

    async def test_transparent_is_free(self, tom: dict[str, Event]) -> None:
        assert tom[LUNCH].show_as is ShowAs.FREE  # TRANSP only
        assert tom[FOCUS].show_as is ShowAs.FREE

    async def test_busy_status_wins_over_transp(self, tom: dict[str, Event]) -> None:
        assert tom[VISIT].show_as is ShowAs.WORKING_ELSEWHERE

    async def test_attendees_answers_and_resources(self, tom: dict[str, Event]) -> None:
        review = tom[REVIEW]
        assert review.organizer == "lead@example.com"
        assert review.attendees == (
            Attendee("tom@example.com", Response.DECLINED),
            Attendee("lisa@example.com", Response.NEEDS_ACTION),
            Attendee("room-amstel@example.com", Response.ACCEPTED, resource=True),
            Attendee("projector-2@example.com", Response.ACCEPTED, resource=True),
        )
        assert review.people() == {"lead@example.com", "tom@example.com", "lisa@example.com"}

    async def test_organizer_not_among_attendees(self, tom: dict[str, Event]) -> None:
        one_on_one = tom[TOM_LISA]
        assert one_on_one.organizer == "tom@example.com"
        assert one_on_one.attendees == (Attendee("lisa@example.com", Response.ACCEPTED),)
        assert one_on_one.response_of("tom@example.com") is Response.ACCEPTED
        assert one_on_one.status is Status.TENTATIVE
        assert not is_one_on_one(tom[REVIEW], "tom@example.com", "lisa@example.com")

    async def test_description_is_unescaped(self, tom: dict[str, Event]) -> None:
        assert tom[TOM_LISA].description == (
            "Check-in first.\nAgreed expectations:\n"
            "- Lisa owns the on-call handbook, due 1 December"
        )

    async def test_single_events_have_no_series(self, tom: dict[str, Event]) -> None:
        assert tom[LUNCH].series_id is None
        assert tom[LUNCH].original_start is None

    async def test_titles_never_leave_the_connector(self, connector: IcsConnector) -> None:
        events = await read(connector, "tom@example.com")
        for title in ("Vacation", "Design review", "Focus time", "Lunch walk", "Tom / Lisa"):
            assert title not in repr(events)

    async def test_organizer_is_lower_case(self, connector: IcsConnector) -> None:
        events = await read(connector, MANAGER, at(2026, 10, 5), at(2026, 10, 6))
        assert [e.organizer for e in events] == [MANAGER]


class TestTimezone:
    """timezone() names X-WR-TIMEZONE, else the one VTIMEZONE, else None (also for no file)."""

    @pytest.mark.parametrize(
        ("manager", "zone"),
        [
            ("anouk@example.com", AMS),
            ("maria@example.com", AMS),
            ("ines@example.com", NYC),
            ("tom@example.com", ZoneInfo("Europe/Berlin")),  # W. Europe Standard Time
            ("sam@example.com", None),
            ("nobody@example.com", None),
        ],
    )
    async def test_zone(self, connector: IcsConnector, manager: str, zone: ZoneInfo | None) -> None:
        assert await connector.timezone(manager) == zone

    async def test_unknown_x_wr_timezone_names_no_zone(self, connector: IcsConnector) -> None:
        assert await connector.timezone("broken-xwr@example.com") is None


class TestBusy:
    """busy() reads each person's own calendar by the shared busy rule; no file means unknown."""

    async def test_busy_and_unknown(self, connector: IcsConnector) -> None:
        busy = await connector.busy(
            MANAGER,
            ["sam@example.com", "nobody@example.com"],
            at(2026, 11, 24),
            at(2026, 11, 28),
            tz=AMS,
        )
        assert busy["nobody@example.com"] is None
        assert busy["sam@example.com"] == [
            # stand-up and dentist overlap; the transparent, declined and cancelled ones are free
            Interval(at(2026, 11, 24, 8, tz=UTC), at(2026, 11, 24, 9, tz=UTC)),
            Interval(at(2026, 11, 25, 8, tz=UTC), at(2026, 11, 25, 8, 30, tz=UTC)),
            Interval(at(2026, 11, 26, 8, tz=UTC), at(2026, 11, 26, 8, 30, tz=UTC)),
            Interval(at(2026, 11, 27, 8, tz=UTC), at(2026, 11, 27, 8, 30, tz=UTC)),
        ]

    async def test_a_persons_unusable_event_is_skipped_and_told(
        self, connector: IcsConnector
    ) -> None:
        warnings: list[str] = []
        busy = await connector.busy(
            MANAGER,
            ["broken-tzid@example.com"],
            at(2026, 11, 1),
            at(2026, 12, 1),
            tz=AMS,
            warn=warnings.append,
        )
        assert busy == {"broken-tzid@example.com": []}
        assert warnings == [
            "broken-tzid@example.com.ics: skipped event UID on-mars@example.com: unknown TZID "
            "'Mars/Olympus_Mons' (add its VTIMEZONE or use an IANA name)"
        ]

    async def test_a_persons_calendar_that_is_none_is_an_error(
        self, connector: IcsConnector
    ) -> None:
        with pytest.raises(CalendarDataError) as caught:
            await connector.busy(
                MANAGER, ["broken-garbage@example.com"], at(2026, 11, 1), at(2026, 12, 1), tz=AMS
            )
        assert str(CALENDARS.absolute() / "broken-garbage@example.com.ics") in str(caught.value)
        assert caught.value.manager == MANAGER


class TestUnusableEvents:
    """One unusable event is skipped with one warning naming file, UID and why; the rest counts."""

    @pytest.mark.parametrize(
        ("manager", "uid", "why"),
        [
            ("broken-no-dtstart", "no-start@example.com", "DTSTART missing"),
            ("broken-tzid", "on-mars@example.com", "unknown TZID 'Mars/Olympus_Mons'"),
            ("broken-rrule", "sometimes@example.com", "bad RRULE"),
            ("broken-no-freq", "how-often@example.com", "RRULE without FREQ"),
            ("broken-interval", "never-advances@example.com", "RRULE with INTERVAL below 1"),
            ("broken-byhour", "hour-25@example.com", "cannot expand its recurrences"),
        ],
    )
    async def test_the_event_is_skipped_with_one_warning(
        self, connector: IcsConnector, manager: str, uid: str, why: str
    ) -> None:
        warnings: list[str] = []
        events = await connector.events(
            f"{manager}@example.com", OCTOBER, DECEMBER, tz=AMS, warn=warnings.append
        )
        assert events == []
        [warning] = warnings
        assert warning.startswith(f"{manager}@example.com.ics: skipped event UID {uid}: {why}")
        assert "\n" not in warning

    async def test_the_good_events_of_the_calendar_still_count(
        self, connector: IcsConnector
    ) -> None:
        warnings: list[str] = []
        events = await connector.events(
            "one-bad-event@example.com", OCTOBER, DECEMBER, tz=AMS, warn=warnings.append
        )
        assert [e.id for e in events] == [
            "good-weekly@example.com/20261102T140000Z",
            "good-weekly@example.com/20261109T140000Z",
            "good-1on1@example.com",
        ]
        assert [w.split(": ")[1] for w in warnings] == [
            "skipped event UID no-start@example.com",
            "skipped event UID holiday-feed@example.com",
            "skipped event UID hour-25@example.com",
        ]

    async def test_without_warn_the_skip_is_silent(self, connector: IcsConnector) -> None:
        assert len(await read(connector, "one-bad-event@example.com")) == 3

    async def test_an_unknown_x_wr_timezone_is_told_and_the_callers_zone_used(
        self, connector: IcsConnector
    ) -> None:
        warnings: list[str] = []
        events = await connector.events(
            "broken-xwr@example.com", OCTOBER, DECEMBER, tz=NYC, warn=warnings.append
        )
        assert [e.id for e in events] == ["sunk@example.com"]
        assert warnings == [
            "broken-xwr@example.com.ics: ignored unknown X-WR-TIMEZONE 'Europe/Atlantis'; "
            "times without a zone are placed in the manager's"
        ]


class TestErrors:
    """Missing, malformed and oversized calendars give one-line errors naming file and fix."""

    async def test_missing_calendar(self, tmp_path: Path) -> None:
        connector = IcsConnector(tmp_path, tmp_path / "holds")
        with pytest.raises(CalendarDataError) as caught:
            await read(connector, MANAGER)
        assert str(caught.value) == (
            f"no calendar for maria@example.com: expected {tmp_path}/maria@example.com.ics; "
            "add it or set KINDLY_ICS__DIR"
        )
        assert caught.value.manager == MANAGER

    @pytest.mark.parametrize(
        ("manager", "problem"),
        [
            ("broken-garbage", "is not a valid iCalendar file"),
            ("broken-bare-event", "has no VCALENDAR"),
        ],
    )
    async def test_malformed(self, connector: IcsConnector, manager: str, problem: str) -> None:
        with pytest.raises(CalendarDataError) as caught:
            await read(connector, f"{manager}@example.com")
        message = str(caught.value)
        assert message.startswith(f"{CALENDARS.absolute()}/{manager}@example.com.ics: ")
        assert problem in message
        assert "\n" not in message
        assert caught.value.manager == f"{manager}@example.com"

    async def test_over_the_size_limit(self, tmp_path: Path) -> None:
        connector = IcsConnector(CALENDARS, tmp_path, max_file_bytes=1000)
        with pytest.raises(CalendarDataError, match=r"larger than 1000 bytes.*MAX_FILE_BYTES"):
            await read(connector, MANAGER)

    async def test_runaway_rule_is_refused_before_expanding(self, connector: IcsConnector) -> None:
        with pytest.raises(CalendarDataError) as caught:
            await read(connector, "runaway@example.com")
        assert "more than 20000 occurrences" in str(caught.value)
        assert "every-second@example.com, RRULE FREQ=SECONDLY" in str(caught.value)
        assert "KINDLY_ICS__MAX_OCCURRENCES" in str(caught.value)

    async def test_a_rule_that_ended_long_ago_is_not_counted(self, connector: IcsConnector) -> None:
        events = await read(connector, "ended-runaway@example.com")
        assert [e.id for e in events] == ["weekly@example.com/20261102T100000Z"]

    async def test_over_the_occurrence_limit(self, tmp_path: Path) -> None:
        assert len(await read(IcsConnector(CALENDARS, tmp_path), "tom@example.com")) == 6
        connector = IcsConnector(CALENDARS, tmp_path, max_occurrences=5)
        with pytest.raises(CalendarDataError, match=r"more than 5 occurrences.*MAX_OCCURRENCES"):
            await read(connector, "tom@example.com")

    async def test_malformed_holds_file(self, connector: IcsConnector) -> None:
        connector.holds_dir.mkdir()
        (connector.holds_dir / f"{MANAGER}.ics").write_text("BEGIN:VCALENDAR\nBEGIN:VEVENT\n")
        with pytest.raises(CalendarDataError, match=f"holds/{MANAGER}.ics: is not a valid"):
            await read(connector, MANAGER)
        with pytest.raises(CalendarDataError, match=f"holds/{MANAGER}.ics: is not a valid"):
            await connector.create_hold(MANAGER, hold())

    async def test_address_that_leaves_the_folder(self, connector: IcsConnector) -> None:
        with pytest.raises(CalendarDataError, match="not a usable calendar file name"):
            await read(connector, "../../etc/passwd")


class TestHolds:
    """A hold is written once per key, read back with its key, in a byte-stable file."""

    async def test_round_trip(self, connector: IcsConnector) -> None:
        placed = await connector.create_hold(MANAGER, hold())
        assert placed.created
        assert (placed.start, placed.end) == (at(2026, 11, 24, 10), at(2026, 11, 24, 10, 30))
        file = connector.holds_dir / f"{MANAGER}.ics"
        written = file.read_bytes()

        again = await connector.create_hold(MANAGER, hold(start=at(2026, 11, 25, 14)))
        assert not again.created
        assert (again.start, again.end) == (placed.start, placed.end)
        assert file.read_bytes() == written

        events = await read(connector, MANAGER, at(2026, 11, 23), at(2026, 11, 30))
        [found] = [e for e in events if e.hold_key is not None]
        assert found.hold_key == HoldKey(MANAGER, "sam@example.com", "2026-W48")
        assert found.id == hold_uid(found.hold_key)
        assert (found.start, found.end) == (placed.start, placed.end)
        assert (found.status, found.show_as) == (Status.TENTATIVE, ShowAs.TENTATIVE)
        assert found.organizer == MANAGER
        assert found.attendees == (Attendee(MANAGER, Response.ACCEPTED),)
        assert found.description == "How are you doing?\nWhat is on your mind?"
        assert "Time for you and Sam" not in repr(found)
        assert not is_one_on_one(found, MANAGER, "sam@example.com")

    async def test_the_file_says_what_the_contract_says(self, connector: IcsConnector) -> None:
        await connector.create_hold(MANAGER, hold(invite_report=True))
        raw = (connector.holds_dir / f"{MANAGER}.ics").read_bytes()
        calendar = icalendar.Calendar.from_ical(raw)
        assert (str(calendar["PRODID"]), str(calendar["VERSION"])) == (
            "-//Kindly//Kindly holds//EN",
            "2.0",
        )
        [vevent] = calendar.events
        key = HoldKey(MANAGER, "sam@example.com", "2026-W48")
        assert str(vevent["UID"]) == f"kindly-{key.hex_id()}@kindly"
        assert b"DTSTAMP:20261123T070000Z" in raw
        assert b"DTSTART:20261124T090000Z" in raw
        assert b"DTEND:20261124T093000Z" in raw
        assert str(vevent["SUMMARY"]) == "Time for you and Sam"
        assert {name: str(vevent[name]) for name in ("STATUS", "TRANSP")} == {
            "STATUS": "TENTATIVE",
            "TRANSP": "OPAQUE",
        }
        assert str(vevent["X-MICROSOFT-CDO-BUSYSTATUS"]) == "TENTATIVE"
        assert str(vevent["ORGANIZER"]) == f"mailto:{MANAGER}"
        attendees = [(str(a), dict(a.params)) for a in vevent.attendees]
        assert attendees == [
            (f"mailto:{MANAGER}", {"PARTSTAT": "ACCEPTED"}),
            ("mailto:sam@example.com", {"PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}),
        ]
        assert [str(vevent[f"X-KINDLY-HOLD-{n}"]) for n in ("MANAGER", "REPORT", "WEEK")] == [
            MANAGER,
            "sam@example.com",
            "2026-W48",
        ]

    async def test_invited_report_makes_it_a_one_on_one(self, connector: IcsConnector) -> None:
        await connector.create_hold(MANAGER, hold(invite_report=True))
        events = await read(connector, MANAGER, at(2026, 11, 24), at(2026, 11, 25))
        [found] = [e for e in events if e.hold_key is not None]
        assert found.response_of("sam@example.com") is Response.NEEDS_ACTION
        assert is_one_on_one(found, MANAGER, "sam@example.com")

    async def test_creation_order_does_not_change_the_file(self, tmp_path: Path) -> None:
        requests = [hold("sam@example.com"), hold("lisa@example.com", start=at(2026, 11, 26, 9))]
        files = []
        for order, folder in ((requests, "one"), (requests[::-1], "two")):
            connector = IcsConnector(CALENDARS, tmp_path / folder)
            for request in order:
                await connector.create_hold(MANAGER, request)
            files.append((tmp_path / folder / f"{MANAGER}.ics").read_bytes())
        assert files[0] == files[1]


def _place_holds(holds_dir: Path, reports: list[str], barrier: Barrier) -> None:
    """One run's worth of hold placing, started in step with another process."""
    connector = IcsConnector(CALENDARS, holds_dir)
    barrier.wait()
    for report in reports:
        asyncio.run(connector.create_hold(MANAGER, hold(report)))


class TestOverlappingRuns:
    """Two processes placing different holds for one manager at once lose and repeat nothing."""

    def test_both_processes_holds_end_up_in_the_file(self, tmp_path: Path) -> None:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(2)
        teams = [[f"a{i}@example.com" for i in range(8)], [f"b{i}@example.com" for i in range(8)]]
        workers = [
            context.Process(target=_place_holds, args=(tmp_path, team, barrier)) for team in teams
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        calendar = icalendar.Calendar.from_ical((tmp_path / f"{MANAGER}.ics").read_bytes())
        reports = sorted(str(e["X-KINDLY-HOLD-REPORT"]) for e in calendar.events)
        assert reports == sorted(teams[0] + teams[1])


_TEXT = st.text(
    st.characters(categories=("L", "N", "P", "S", "Zs"), include_characters="\n"), max_size=120
)
_REQUESTS = st.builds(
    hold,
    report=st.sampled_from(["sam@example.com", "lisa@example.com", "ruben@example.com"]),
    week=st.sampled_from(["2026-W48", "2026-W49"]),
    start=st.builds(
        lambda day, quarter, zone: (
            datetime(2026, 11, 23, tzinfo=zone) + timedelta(days=day, minutes=15 * quarter)
        ),
        st.integers(0, 13),
        st.integers(32, 72),
        st.sampled_from([AMS, NYC, UTC]),
    ),
    invite_report=st.booleans(),
    title=_TEXT,
    description=_TEXT,
)


class TestHoldsProperty:
    """Whatever holds are asked for, in whatever order, the file has one VEVENT per key."""

    @settings(
        max_examples=25,
        deadline=None,
        # each example writes to its own fresh folder under tmp_path
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(requests=st.lists(_REQUESTS, min_size=1, max_size=8), data=st.data())
    def test_one_event_per_key(
        self, tmp_path: Path, requests: list[HoldRequest], data: st.DataObject
    ) -> None:
        shuffled = data.draw(st.permutations(requests))
        first = {r.key: r for r in reversed(shuffled)}  # the earliest request per key wins
        connector = IcsConnector(CALENDARS, Path(tempfile.mkdtemp(dir=tmp_path)))
        for request in shuffled:
            placed = asyncio.run(connector.create_hold(MANAGER, request))
            assert placed.start == first[request.key].start
            assert placed.created == (first[request.key] is request)

        raw = (connector.holds_dir / f"{MANAGER}.ics").read_bytes()
        uids = [str(e["UID"]) for e in icalendar.Calendar.from_ical(raw).events]
        assert sorted(uids) == sorted(hold_uid(key) for key in first)

        events = asyncio.run(read(connector, MANAGER, at(2026, 11, 20), at(2026, 12, 10)))
        holds = {e.hold_key: e for e in events if e.hold_key is not None}
        assert holds.keys() == first.keys()
        for key, event in holds.items():
            assert (event.start, event.end) == (first[key].start, first[key].end)
            assert event.description == first[key].description

        again = IcsConnector(CALENDARS, Path(tempfile.mkdtemp(dir=tmp_path)))
        for request in sorted(first.values(), key=lambda r: r.key.hex_id()):
            asyncio.run(again.create_hold(MANAGER, request))
        assert (again.holds_dir / f"{MANAGER}.ics").read_bytes() == raw
