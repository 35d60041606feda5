"""Hold planning (service/hold_plan.py): the week's decisions, tested without a connector."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.cadence import ReportStatus
from service.hold_plan import HoldAction, existing_holds, plan_holds
from service.meetings import MeetingIndex
from service.model import Event, HoldKey, Interval, Manager, PlacedHold, Policy, Report
from service.team_time import TeamTime
from service.week import ManagerWeek
from service.working_time import Person

AMS = ZoneInfo("Europe/Amsterdam")
#: Monday 23 November 2026, 10:00 in Amsterdam
NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
REPORTS = tuple(Report(f"r{i}@example.com", f"Report {i}") for i in range(4))
MANAGER = Manager("m@example.com", "Maria", reports=REPORTS)
WEEK = ManagerWeek.of(MANAGER, now=NOW, tz=AMS, policy=Policy(), default_language="en")


def overdue(*reports: Report) -> tuple[ReportStatus, ...]:
    return tuple(
        ReportStatus(r, 14, None, None, overdue=True, long_unmet=True, new_hire=False)
        for r in reports
    )


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=AMS)


def team(
    busy: list[Interval] | None = None, report_busy: dict[str, list[Interval]] | None = None
) -> TeamTime:
    """Everyone on the settings' default working time in Amsterdam; no one away."""
    me = Person(MANAGER.email, AMS, Policy().working_time)
    return TeamTime(
        manager=me,
        reports={r.email: Person(r.email, AMS, Policy().working_time) for r in REPORTS},
        busy=busy or [],
        report_busy=report_busy or {},
    )


def held(report: Report, start: datetime) -> PlacedHold:
    return PlacedHold(WEEK.hold_key(report.email), start, start + timedelta(minutes=30), False)


class TestDecisions:
    """Keep this week's hold, respect a removed one, book the first free slot, or say none."""

    def test_first_free_slots_are_booked_one_after_another(self) -> None:
        plans = plan_holds(WEEK, overdue(*REPORTS[:2]), team=team([]), existing={}, removed=())
        assert [p.action for p in plans] == [HoldAction.PLACE, HoldAction.PLACE]
        assert [p.slot.start for p in plans if p.slot] == [local(23, 10), local(23, 10, 30)]

    def test_a_hold_already_there_is_kept_and_books_nothing(self) -> None:
        there = held(REPORTS[0], local(24, 14))
        plans = plan_holds(
            WEEK,
            overdue(*REPORTS[:2]),
            team=team(),
            existing={REPORTS[0].email: there},
            removed=(),
        )
        assert (plans[0].action, plans[0].existing) == (HoldAction.KEEP, there)
        assert plans[1].slot is not None
        assert plans[1].slot.start == local(23, 10)

    def test_a_hold_the_manager_removed_is_not_placed_again(self) -> None:
        plans = plan_holds(
            WEEK,
            overdue(REPORTS[0]),
            team=team(),
            existing={},
            removed={REPORTS[0].email},
        )
        assert [(p.action, p.slot) for p in plans] == [(HoldAction.RESPECT_REMOVAL, None)]

    def test_the_reports_busy_time_counts(self) -> None:
        theirs = [Interval(local(23, 10), local(23, 12))]
        plans = plan_holds(
            WEEK,
            overdue(REPORTS[0]),
            team=team(report_busy={REPORTS[0].email: theirs}),
            existing={},
            removed=(),
        )
        assert plans[0].slot is not None
        assert plans[0].slot.start == local(23, 12)

    def test_no_free_slot_leaves_the_report_unplaced(self) -> None:
        week_long = [Interval(NOW, NOW + timedelta(days=8))]
        plans = plan_holds(WEEK, overdue(REPORTS[0]), team=team(week_long), existing={}, removed=())
        assert [p.action for p in plans] == [HoldAction.UNPLACED]

    def test_plans_keep_roster_order_and_keys(self) -> None:
        plans = plan_holds(
            WEEK, overdue(REPORTS[2], REPORTS[0]), team=team([]), existing={}, removed=()
        )
        assert [p.key for p in plans] == [
            HoldKey(MANAGER.email, REPORTS[2].email, "2026-W48"),
            HoldKey(MANAGER.email, REPORTS[0].email, "2026-W48"),
        ]


class TestExistingHolds:
    """This week's hold is found on the calendar by its key; other weeks' are not."""

    @pytest.mark.parametrize(("week", "found"), [("2026-W48", True), ("2026-W47", False)])
    def test_by_week(self, week: str, found: bool) -> None:
        key = HoldKey(MANAGER.email, REPORTS[1].email, week)
        event = Event("h", local(25, 9), local(25, 9, 30), organizer=MANAGER.email, hold_key=key)
        holds = existing_holds(WEEK, MeetingIndex([event]))
        assert (REPORTS[1].email in holds) is found
        if found:
            assert holds[REPORTS[1].email].start.tzinfo is AMS


class TestWeek:
    """One manager-week: the local ISO week names outcomes and hold keys alike."""

    def test_sunday_night_utc_is_already_monday_in_tokyo(self) -> None:
        sunday_night = datetime(2026, 11, 22, 20, tzinfo=UTC)
        tokyo = ManagerWeek.of(
            MANAGER,
            now=sunday_night,
            tz=ZoneInfo("Asia/Tokyo"),
            policy=Policy(),
            default_language="en",
        )
        assert (tokyo.week, tokyo.hold_key("X@Example.com").week) == ("2026-W48", "2026-W48")
        assert tokyo.hold_key("X@Example.com").report == "x@example.com"

    def test_language_falls_back_to_the_default(self) -> None:
        dutch = Manager("n@example.com", "Noor", language="nl")
        assert (
            ManagerWeek.of(dutch, now=NOW, tz=AMS, policy=Policy(), default_language="en").language
            == "nl"
        )
        assert WEEK.language == "en"


@settings(max_examples=60, deadline=None)
@given(
    busy_hours=st.lists(st.tuples(st.integers(0, 4), st.integers(9, 16)), max_size=20),
    count=st.integers(1, 4),
)
def test_planned_slots_never_overlap_each_other_or_busy_time(
    busy_hours: list[tuple[int, int]], count: int
) -> None:
    busy = [
        Interval(local(23 + d, h), local(23 + d, h) + timedelta(hours=1)) for d, h in busy_hours
    ]
    plans = plan_holds(WEEK, overdue(*REPORTS[:count]), team=team(busy), existing={}, removed=())
    slots = [p.slot for p in plans if p.slot is not None]
    assert len(plans) == count
    for i, slot in enumerate(slots):
        assert not any(slot.overlaps(b) for b in busy)
        assert not any(slot.overlaps(other) for other in slots[i + 1 :])
        assert slot.start >= NOW
        assert slot.start.astimezone(AMS).date() >= date(2026, 11, 23)
