"""Respecting people's time (docs/design.md): working time per person, holidays, away, and the
hold rules (notice, quiet hours, gap, per-day cap), as worked examples and properties.

Everything here is pure: ``team_time`` and ``plan_holds`` on hand-made calendars.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.agenda import BlockKind, support_matters, team_agendas
from service.away import away_this_week
from service.cadence import ReportStatus, analyse
from service.digest import build_digest, render_digest
from service.hold_plan import HoldAction, HoldPlan, Unplaced, plan_holds
from service.model import (
    Event,
    Interval,
    Manager,
    PlacedHold,
    Policy,
    ProviderWorkingTime,
    Report,
    ShowAs,
    WorkingTime,
)
from service.team_time import TeamTime, team_time
from service.week import ManagerWeek
from service.working_time import Person, holidays_of

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
#: the product's defaults: 24 h notice, 2 holds a day, 30 minutes apart, lunch kept free
RULES = Policy(notice_hours=24, max_per_day=2, gap_minutes=30, quiet_hours=(time(12), time(13)))
SAM = Report("sam@example.com", "Sam Lee")
ANA = Report("ana@example.com", "Ana Ruiz")
LEA = Report("lea@example.com", "Lea Smit")
MARIA = Manager("maria@example.com", "Maria Jansen", reports=(SAM, ANA, LEA))


def at(day: date, hour: int, minute: int = 0, tz: ZoneInfo = AMS) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def whole_days(first: date, days: int, tz: ZoneInfo = AMS) -> Interval:
    return Interval(at(first, 0, tz=tz), at(first + timedelta(days=days), 0, tz=tz))


def week_of(now: datetime, manager: Manager = MARIA, policy: Policy = RULES) -> ManagerWeek:
    return ManagerWeek.of(manager, now=now, tz=AMS, policy=policy, default_language="en")


def due(*reports: Report) -> tuple[ReportStatus, ...]:
    return tuple(ReportStatus(r, 14, None, None, True, True, False) for r in reports)


def busy_event(span: Interval, *, who: str = MARIA.email, show_as: ShowAs = ShowAs.BUSY) -> Event:
    return Event(f"e{span.start.isoformat()}", span.start, span.end, organizer=who, show_as=show_as)


def team_of(
    week: ManagerWeek,
    *,
    busy: Sequence[Interval] = (),
    report_busy: Mapping[str, Sequence[Interval] | None] | None = None,
    provider: Mapping[str, ProviderWorkingTime] | None = None,
) -> TeamTime:
    events = [busy_event(b) for b in busy]
    theirs = report_busy if report_busy is not None else {r.email: [] for r in week.manager.reports}
    return team_time(week, events, theirs, provider or {})


def plans_for(
    week: ManagerWeek,
    reports: Sequence[Report],
    team: TeamTime,
    existing: Mapping[str, PlacedHold] | None = None,
) -> list[HoldPlan]:
    return list(plan_holds(week, due(*reports), team=team, existing=existing or {}, removed=()))


def starts(plans: Sequence[HoldPlan]) -> list[datetime | None]:
    return [p.slot.start if p.slot else None for p in plans]


MONDAY = date(2026, 11, 23)
#: Monday 23 November 2026, 08:00 in Amsterdam: the digest's own morning
DIGEST_MORNING = at(MONDAY, 8)


class TestNotice:
    """A hold never lands on the digest's own morning: 24 hours of notice by default."""

    def test_first_hold_is_tomorrow_not_this_morning(self) -> None:
        week = week_of(DIGEST_MORNING)
        (plan,) = plans_for(week, [SAM], team_of(week))
        assert plan.slot is not None
        assert plan.slot.start == at(MONDAY + timedelta(days=1), 9)

    def test_notice_off_allows_this_morning(self) -> None:
        week = week_of(DIGEST_MORNING, policy=replace(RULES, notice_hours=0))
        (plan,) = plans_for(week, [SAM], team_of(week))
        assert plan.slot is not None
        assert plan.slot.start == at(MONDAY, 9)

    def test_notice_across_the_dst_change_counts_real_hours(self) -> None:
        # Saturday 24 October 2026, 10:00 CEST; clocks go back on Sunday 25 October
        saturday = at(date(2026, 10, 24), 10)
        week = week_of(saturday, policy=replace(RULES, notice_hours=48))
        (plan,) = plans_for(week, [SAM], team_of(week))
        # 48 real hours later is Monday 09:00 CET (not 10:00): the first slot of the day
        assert plan.slot is not None
        assert plan.slot.start == at(date(2026, 10, 26), 9)
        # same-zone datetimes subtract on the wall clock: compare the instants
        assert plan.slot.start.astimezone(UTC) - saturday.astimezone(UTC) == timedelta(hours=48)


class TestQuietHoursGapAndCap:
    """No hold over lunch, none back to back, at most two a day; earlier runs' holds count."""

    def test_three_holds_spread_over_two_days_apart_and_not_over_lunch(self) -> None:
        week = week_of(DIGEST_MORNING)
        tuesday = MONDAY + timedelta(days=1)
        # busy all Tuesday morning but 11:30-12:00 and from 13:00 to 13:30
        busy = [
            Interval(at(tuesday, 9), at(tuesday, 11, 30)),
            Interval(at(tuesday, 13), at(tuesday, 13, 30)),
        ]
        plans = plans_for(week, [SAM, ANA, LEA], team_of(week, busy=busy))
        assert starts(plans) == [
            at(tuesday, 11, 30),  # ends at 12:00: lunch untouched
            at(tuesday, 13, 30),  # not 12:30 (lunch is quiet), not 13:00 (busy)
            at(tuesday + timedelta(days=1), 9),  # Tuesday has two already
        ]

    def test_holds_of_an_earlier_run_count_for_gap_and_cap(self) -> None:
        week = week_of(DIGEST_MORNING)
        tuesday = MONDAY + timedelta(days=1)
        earlier = PlacedHold(week.hold_key(SAM.email), at(tuesday, 9), at(tuesday, 9, 30), False)
        plans = plans_for(week, [SAM, ANA, LEA], team_of(week), existing={SAM.email: earlier})
        assert plans[0].action is HoldAction.KEEP
        # ANA: not at 9:30 or 9:45 (gap), so 10:00; LEA: Tuesday is full (2), so Wednesday
        assert starts(plans[1:]) == [at(tuesday, 10), at(tuesday + timedelta(days=1), 9)]

    def test_every_rule_can_be_switched_off(self) -> None:
        week = week_of(DIGEST_MORNING, policy=Policy())
        plans = plans_for(week, [SAM, ANA, LEA], team_of(week))
        assert starts(plans) == [at(MONDAY, 9), at(MONDAY, 9, 30), at(MONDAY, 10)]


class TestWorkingTimePerPerson:
    """Both people's working days and hours, each in their own zone."""

    def test_four_day_week(self) -> None:
        part_time = replace(SAM, working_days=frozenset({1, 2, 3, 4}))
        manager = replace(MARIA, reports=(part_time,))
        week = week_of(at(date(2026, 11, 26), 8), manager)  # Thursday morning
        (plan,) = plans_for(week, [part_time], team_of(week))
        # Friday is not Sam's day: the next shared day is Monday
        assert plan.slot is not None
        assert plan.slot.start == at(date(2026, 11, 30), 9)

    def test_afternoon_only(self) -> None:
        afternoons = replace(SAM, working_hours=(time(13), time(17)))
        manager = replace(MARIA, reports=(afternoons,))
        week = week_of(DIGEST_MORNING, manager)
        (plan,) = plans_for(week, [afternoons], team_of(week))
        assert plan.slot is not None
        assert plan.slot.start == at(MONDAY + timedelta(days=1), 13)

    def test_a_report_in_new_york_shares_the_amsterdam_afternoon(self) -> None:
        remote = replace(SAM, timezone="America/New_York")
        manager = replace(MARIA, reports=(remote,))
        week = week_of(DIGEST_MORNING, manager)
        (plan,) = plans_for(week, [remote], team_of(week))
        assert plan.slot is not None
        assert plan.slot.start == at(MONDAY + timedelta(days=1), 9, tz=NYC)  # 15:00 in Amsterdam

    def test_no_shared_working_time_is_said(self) -> None:
        weekends = replace(SAM, working_days=frozenset({6, 7}))
        manager = replace(MARIA, reports=(weekends,))
        week = week_of(DIGEST_MORNING, manager)
        (plan,) = plans_for(week, [weekends], team_of(week))
        assert (plan.action, plan.unplaced) == (HoldAction.UNPLACED, Unplaced.NO_SHARED_TIME)

    def test_outlook_working_hours_are_used_when_the_roster_has_none(self) -> None:
        week = week_of(DIGEST_MORNING)
        early = ProviderWorkingTime(
            WorkingTime(frozenset({1, 2, 3, 4, 5}), time(7), time(10)), "UTC"
        )
        team = team_of(week, provider={SAM.email: early})
        (plan,) = plans_for(week, [SAM], team)
        # 07:00-10:00 UTC is 08:00-11:00 in Amsterdam; Maria starts at 09:00
        assert plan.slot is not None
        assert plan.slot.start == at(MONDAY + timedelta(days=1), 9)
        assert team.reports[SAM.email].tz == ZoneInfo("UTC")

    def test_the_roster_wins_over_the_provider(self) -> None:
        week = week_of(DIGEST_MORNING, replace(MARIA, working_hours=(time(14), time(17))))
        early = ProviderWorkingTime(WorkingTime(frozenset({1, 2, 3, 4, 5}), time(7), time(10)))
        team = team_of(week, provider={MARIA.email: early})
        assert team.manager.working.start == time(14)


class TestHolidays:
    """A public holiday of either person's country is not a working day."""

    @pytest.mark.parametrize(
        ("country", "day", "name"),
        [
            ("NL", date(2026, 12, 25), "Christmas Day"),
            ("NL", date(2027, 1, 1), "New Year's Day"),
            ("NL", date(2027, 4, 27), "King's Day"),
            ("US", date(2026, 11, 26), "Thanksgiving Day"),
            ("US-NY", date(2026, 12, 25), "Christmas Day"),
            ("DE-BY", date(2026, 1, 6), "Epiphany"),
        ],
    )
    def test_known_holidays(self, country: str, day: date, name: str) -> None:
        assert holidays_of(country, day.year)[day] == name

    def test_dutch_names_for_a_dutch_digest(self) -> None:
        assert holidays_of("NL", 2026, "nl")[date(2026, 12, 25)] == "Eerste kerstdag"

    def test_christmas_week_in_the_netherlands(self) -> None:
        # Thursday 24 December 2026: the window is Friday 25 (Christmas) to Wednesday 30.
        # Sam works Mondays and Fridays; Maria is in meetings all Monday.
        christmas_eve = date(2026, 12, 24)
        sam = replace(SAM, working_days=frozenset({1, 5}))
        monday = date(2026, 12, 28)
        busy = [Interval(at(monday, 8), at(monday, 18))]
        dutch = week_of(at(christmas_eve, 8), replace(MARIA, reports=(sam,), country="NL"))
        (plan,) = plans_for(dutch, [sam], team_of(dutch, busy=busy))
        assert (plan.action, plan.unplaced) == (HoldAction.UNPLACED, Unplaced.FULLY_BOOKED)
        nowhere = week_of(at(christmas_eve, 8), replace(MARIA, reports=(sam,)))
        (placed,) = plans_for(nowhere, [sam], team_of(nowhere, busy=busy))
        assert placed.slot is not None
        assert placed.slot.start == at(date(2026, 12, 25), 9)

    def test_thanksgiving_is_skipped_for_a_report_in_the_us(self) -> None:
        # a report in New York (US): Thursday 26 November is Thanksgiving
        us = replace(SAM, timezone="America/New_York", country="US-NY")
        manager = replace(MARIA, reports=(us,), country="NL")
        week = week_of(DIGEST_MORNING, manager)
        busy = [whole_days(MONDAY + timedelta(days=1), 2)]  # Maria busy Tuesday and Wednesday
        (plan,) = plans_for(week, [us], team_of(week, busy=busy))
        assert plan.slot is not None
        assert plan.slot.start.astimezone(NYC).date() == date(2026, 11, 27)

    def test_new_year_for_the_manager_only(self) -> None:
        # Wednesday 30 December 2026; 1 January is a holiday in the Netherlands
        week = week_of(at(date(2026, 12, 30), 8), replace(MARIA, country="NL"))
        busy = [whole_days(date(2026, 12, 31), 1)]
        (plan,) = plans_for(week, [SAM], team_of(week, busy=busy))
        assert plan.slot is not None
        assert plan.slot.start == at(date(2027, 1, 4), 9)

    def test_a_reports_country_defaults_to_the_managers(self) -> None:
        week = week_of(DIGEST_MORNING, replace(MARIA, country="NL"))
        assert team_of(week).reports[SAM.email].country == "NL"


class TestAway:
    """Leave and out-of-office: away this week, back on the first working day back."""

    def test_parental_leave_over_ten_weeks_is_away_with_no_date_in_reach(self) -> None:
        week = week_of(DIGEST_MORNING)
        leave = whole_days(date(2026, 11, 2), 70)
        team = team_of(week, report_busy={SAM.email: [leave], ANA.email: [], LEA.email: []})
        assert team.away[SAM.email].back_on is None
        assert team.away_by_email() == {SAM.email: None}

    def test_back_on_the_first_working_day_after_the_leave(self) -> None:
        week = week_of(DIGEST_MORNING)
        leave = whole_days(MONDAY, 14)  # back on Monday 7 December
        team = team_of(week, report_busy={SAM.email: [leave]})
        assert team.away[SAM.email].back_on == date(2026, 12, 7)

    def test_back_date_skips_a_holiday(self) -> None:
        # away until Christmas Eve; 25 and 26 are holidays in NL, 27 a Sunday: back on the 28th
        week = week_of(at(date(2026, 12, 14), 8), replace(MARIA, country="NL"))
        leave = Interval(at(date(2026, 12, 14), 0), at(date(2026, 12, 25), 0))
        team = team_of(week, report_busy={SAM.email: [leave]})
        assert team.away[SAM.email].back_on == date(2026, 12, 28)

    def test_away_on_some_days_only_is_not_away(self) -> None:
        week = week_of(DIGEST_MORNING)
        tuesday_to_thursday = whole_days(MONDAY + timedelta(days=1), 3)
        team = team_of(week, report_busy={SAM.email: [tuesday_to_thursday]})
        assert SAM.email not in team.away
        (plan,) = plans_for(week, [SAM], team)
        assert plan.slot is not None
        assert plan.slot.start.date() == date(2026, 11, 27)  # Friday, the day Sam is in

    def test_busy_all_working_hours_counts_as_away(self) -> None:
        week = week_of(DIGEST_MORNING)
        days = [
            Interval(at(MONDAY + timedelta(days=d), 8), at(MONDAY + timedelta(days=d), 18))
            for d in range(0, 9)
        ]
        team = team_of(week, report_busy={SAM.email: days})
        assert SAM.email in team.away

    def test_an_away_report_is_not_overdue_and_not_counted_this_week(self) -> None:
        week = week_of(DIGEST_MORNING)
        team = team_of(week, report_busy={SAM.email: [whole_days(MONDAY, 21)]})
        analysis = analyse(
            MARIA, [], now=week.now, policy=RULES, tz=AMS, away=team.away, manager_away=None
        )
        sam = analysis.reports[0]
        assert (sam.away, sam.overdue, sam.back_on) == (True, False, date(2026, 12, 14))
        assert analysis.coverage[-1].total == 2
        assert analysis.coverage[0].total == 3

    def test_an_out_of_office_manager_gets_no_hold_at_all(self) -> None:
        week = week_of(DIGEST_MORNING)
        out = busy_event(whole_days(MONDAY, 10), show_as=ShowAs.OOF)
        team = team_time(week, [out], {SAM.email: []}, {})
        assert team.manager_away is not None
        assert team.manager_away.back_on == date(2026, 12, 3)
        assert plan_holds(week, due(SAM), team=team, existing={}, removed=()) == ()
        assert team.away_by_email() == {MARIA.email: "2026-12-03"}

    @pytest.mark.parametrize(
        ("language", "said"),
        [
            ("en", "You’re away this week, back Thu, Dec 3: Kindly placed no holds."),
            ("nl", "Je bent deze week afwezig, do 3 dec weer terug: Kindly blokte geen tijd."),
        ],
    )
    def test_an_away_managers_digest_says_so_and_when_they_are_back(
        self, language: str, said: str
    ) -> None:
        # the holiday-week demo's Pieter: his digest went out listing who is due, with
        # agendas, and no word that he is away (regression)
        week = week_of(DIGEST_MORNING)
        out = busy_event(whole_days(MONDAY, 10), show_as=ShowAs.OOF)
        team = team_time(week, [out], {SAM.email: []}, {})
        analysis = analyse(
            MARIA, [], now=week.now, policy=RULES, tz=AMS, manager_away=team.manager_away
        )
        digest = build_digest(
            analysis, holds={}, agreed={}, policy=RULES, language=language, agendas={}
        )
        assert digest.intro.startswith(said)
        assert digest.intro in render_digest(digest).text

    def test_a_present_managers_digest_does_not_say_they_are_away(self) -> None:
        week = week_of(DIGEST_MORNING)
        analysis = analyse(MARIA, [], now=week.now, policy=RULES, tz=AMS)
        digest = build_digest(
            analysis, holds={}, agreed={}, policy=RULES, language="en", agendas={}
        )
        assert "away" not in digest.intro

    def test_back_from_leave_this_week_is_welcomed_back(self) -> None:
        # on leave 9 to 20 November (the Friday before the digest): back on Monday 23
        week = week_of(DIGEST_MORNING)
        leave = whole_days(date(2026, 11, 9), 12)
        team = team_of(week, report_busy={SAM.email: [leave], ANA.email: [], LEA.email: []})
        assert SAM.email not in team.away
        assert team.returning == {SAM.email: MONDAY}
        analysis = analyse(MARIA, [], now=week.now, policy=RULES, tz=AMS, returning=team.returning)
        sam = analysis.reports[0]
        assert (sam.away, sam.back_on) == (False, MONDAY)
        assert support_matters(sam)
        agendas = team_agendas(analysis, week=week.week, language="en", policy=RULES)
        assert BlockKind.SUPPORT in {b.kind for b in agendas[SAM.email].blocks}

    def test_free_busy_is_read_a_few_days_back_within_the_providers_window(self) -> None:
        week = week_of(DIGEST_MORNING)
        assert week.now - week.free_busy_start == timedelta(days=5)
        assert week.lookahead_end - week.free_busy_start <= timedelta(days=41)
        far = week_of(DIGEST_MORNING, policy=replace(RULES, lookahead_days=41))
        assert far.free_busy_start == far.now  # no room left: nothing read back

    def test_kindlys_own_holds_never_make_the_manager_away(self) -> None:
        week = week_of(DIGEST_MORNING)
        hold = Event(
            "h",
            at(MONDAY, 0),
            at(MONDAY + timedelta(days=9), 0),
            organizer=MARIA.email,
            hold_key=week.hold_key(SAM.email),
        )
        assert team_time(week, [hold], {}, {}).manager_away is None

    def test_nobody_is_away_from_a_window_without_working_days(self) -> None:
        person = Person("x@example.com", AMS, WorkingTime(frozenset({6}), time(9), time(17)))
        assert (
            away_this_week(
                person,
                [whole_days(MONDAY, 30)],
                start=DIGEST_MORNING,
                end=at(MONDAY + timedelta(days=5), 8),
                lookahead_end=DIGEST_MORNING + timedelta(days=35),
            )
            is None
        )


# -- properties over random calendars --------------------------------------------------

PEOPLE = st.builds(
    Report,
    email=st.sampled_from(["a@example.com", "b@example.com", "c@example.com"]),
    name=st.just("R"),
    working_days=st.one_of(st.none(), st.frozensets(st.integers(1, 7), min_size=1, max_size=7)),
    working_hours=st.one_of(
        st.none(),
        st.tuples(st.integers(6, 12), st.integers(13, 20)).map(lambda h: (time(h[0]), time(h[1]))),
    ),
    country=st.sampled_from([None, "NL", "US-NY", "DE-BY"]),
    timezone=st.sampled_from([None, "America/New_York", "Asia/Kolkata", "Europe/Lisbon"]),
)
SPANS = st.lists(
    st.tuples(st.integers(0, 24 * 9), st.integers(1, 60)).map(
        lambda t: Interval(
            DIGEST_MORNING + timedelta(hours=t[0] / 2),
            DIGEST_MORNING + timedelta(hours=(t[0] + t[1]) / 2),
        )
    ),
    max_size=12,
)


@settings(max_examples=120, deadline=None)
@given(
    reports=st.lists(PEOPLE, min_size=1, max_size=3, unique_by=lambda r: r.email),
    manager_busy=SPANS,
    their_busy=st.lists(SPANS, min_size=3, max_size=3),
    start_offset=st.integers(0, 24 * 40),
    country=st.sampled_from([None, "NL", "US"]),
)
def test_holds_keep_every_rule(
    reports: list[Report],
    manager_busy: list[Interval],
    their_busy: list[list[Interval]],
    start_offset: int,
    country: str | None,
) -> None:
    now = DIGEST_MORNING + timedelta(hours=start_offset)
    manager = replace(MARIA, reports=tuple(reports), country=country)
    week = week_of(now, manager)
    report_busy = {r.email: busy for r, busy in zip(reports, their_busy, strict=False)}
    team = team_of(week, busy=manager_busy, report_busy=report_busy)
    plans = plan_holds(week, due(*reports), team=team, existing={}, removed=())
    slots = [(p.status.report.email, p.slot) for p in plans if p.slot is not None]
    per_day: Counter[date] = Counter()
    for email, slot in slots:
        me, them = team.manager, team.reports[email]
        for person in (me, them):
            local = slot.start.astimezone(person.tz)
            assert person.works_on(local.date()), "a holiday or day off"
            assert person.working.start <= local.time()
            end = slot.end.astimezone(person.tz)
            assert end.date() == local.date()
            assert end.time() <= person.working.end
        assert slot.start >= now + timedelta(hours=RULES.notice_hours)
        assert slot.end <= week.horizon_end
        lunch = Interval(
            datetime.combine(slot.start.astimezone(AMS).date(), time(12), AMS),
            datetime.combine(slot.start.astimezone(AMS).date(), time(13), AMS),
        )
        assert not slot.overlaps(lunch)
        assert not any(slot.overlaps(b) for b in manager_busy)
        assert not any(slot.overlaps(b) for b in report_busy.get(email, ()))
        per_day[slot.start.astimezone(AMS).date()] += 1
    for i, (_, one) in enumerate(slots):
        for _, other in slots[i + 1 :]:
            gap = timedelta(minutes=RULES.gap_minutes)
            assert one.end + gap <= other.start or other.end + gap <= one.start
    assert all(count <= RULES.max_per_day for count in per_day.values())
    # a re-run that finds these holds on the calendar places nothing new
    existing = {
        email: PlacedHold(week.hold_key(email), slot.start, slot.end, False)
        for email, slot in slots
    }
    again = plan_holds(week, due(*reports), team=team, existing=existing, removed=())
    assert [p.action for p in again if p.status.report.email in existing] == [
        HoldAction.KEEP
    ] * len(existing)
    assert not any(p.action is HoldAction.PLACE for p in again if p.status.report.email in existing)


@settings(max_examples=60, deadline=None)
@given(
    report=PEOPLE,
    start_offset=st.integers(0, 24 * 30),
)
def test_someone_away_every_working_day_gets_no_hold(report: Report, start_offset: int) -> None:
    now = DIGEST_MORNING + timedelta(hours=start_offset)
    manager = replace(MARIA, reports=(report,))
    week = week_of(now, manager)
    leave = Interval(now - timedelta(days=3), now + timedelta(days=60))
    team = team_of(week, report_busy={report.email: [leave]})
    person = team.reports[report.email]
    if not person.windows(now + timedelta(hours=RULES.notice_hours), week.horizon_end):
        assert report.email not in team.away  # no working day in the window: not "away"
        return
    assert team.away[report.email].back_on is None
    analysis = analyse(manager, [], now=now, policy=RULES, tz=AMS, away=team.away)
    assert not analysis.reports[0].overdue
    # and were they planned anyway, no slot could be free
    (plan,) = plan_holds(week, due(report), team=team, existing={}, removed=())
    assert plan.slot is None
