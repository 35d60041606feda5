"""Cadence analysis: held, upcoming, overdue, changes and coverage, as docs/design.md defines them.

Times are written as offsets from a pinned "now" (Monday 2026-11-23 08:00 in
Amsterdam) in real 24-hour days and shown in Amsterdam time, so the 56-day
lookback reaches across the October DST change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.cadence import Change, ChangeKind, ReportStatus, TeamAnalysis, analyse
from service.model import (
    Attendee,
    Event,
    HoldKey,
    Manager,
    Policy,
    Report,
    Response,
    Status,
)

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")
MARIA = "maria@example.com"
SAM = "sam@example.com"
ANA = "ana@example.com"
LEE = "lee@example.com"
ROOM = "room-3@example.com"
NOW = datetime(2026, 11, 23, 8, tzinfo=AMS)
POLICY = Policy()  # cadence 14, lookback 56, horizon 7
D = timedelta(days=1)
S = timedelta(seconds=1)


def t(offset: timedelta) -> datetime:
    """``offset`` of real time from NOW, on Amsterdam's clock."""
    return (NOW.astimezone(UTC) + offset).astimezone(AMS)


def meeting(
    offset: timedelta,
    *,
    organizer: str = MARIA,
    attendees: Sequence[str] = (SAM,),
    responses: dict[str, Response] | None = None,
    rooms: Sequence[str] = (),
    status: Status = Status.CONFIRMED,
    original_start: datetime | None = None,
    hold_key: HoldKey | None = None,
) -> Event:
    """A 30-minute event; invited people accept unless ``responses`` says otherwise."""
    answers = responses or {}
    people = tuple(Attendee(e, answers.get(e, Response.ACCEPTED)) for e in attendees)
    resources = tuple(Attendee(r, Response.ACCEPTED, resource=True) for r in rooms)
    start = t(offset)
    return Event(
        id=f"ev-{offset.total_seconds()}",
        start=start,
        end=start + timedelta(minutes=30),
        status=status,
        organizer=organizer,
        attendees=people + resources,
        original_start=original_start,
        hold_key=hold_key,
    )


def team(*reports: Report, email: str = MARIA) -> Manager:
    return Manager(email=email, name="Maria", reports=reports)


def analysis(
    events: Sequence[Event],
    *,
    reports: Sequence[Report] = (Report(SAM, "Sam"),),
    now: datetime = NOW,
    policy: Policy = POLICY,
    tz: ZoneInfo = AMS,
) -> TeamAnalysis:
    return analyse(team(*reports), events, now=now, policy=policy, tz=tz)


def status(
    events: Sequence[Event],
    *,
    reports: Sequence[Report] = (Report(SAM, "Sam"),),
    now: datetime = NOW,
    policy: Policy = POLICY,
) -> ReportStatus:
    """The first report's status."""
    return analysis(events, reports=reports, now=now, policy=policy).reports[0]


def utc(moment: datetime | None) -> datetime | None:
    """Compare as instants: same-zone datetimes compare on the wall clock."""
    return None if moment is None else moment.astimezone(UTC)


class TestHeldUpcomingOverdue:
    """Held, upcoming and overdue follow the definitions to the second."""

    @pytest.mark.parametrize(
        ("starts", "last_held", "next_upcoming", "overdue"),
        [
            pytest.param([], None, None, True, id="never-met"),
            pytest.param([-14 * D], -14 * D, None, False, id="exactly-cadence-ago"),
            pytest.param([-14 * D - S], -14 * D - S, None, True, id="cadence-and-1s-ago"),
            pytest.param([-S], -S, None, False, id="1s-before-now-is-held"),
            pytest.param([-56 * D], -56 * D, None, True, id="lookback-edge-counts"),
            pytest.param([-56 * D - S], None, None, True, id="before-lookback-ignored"),
            pytest.param([0 * D], None, 0 * D, False, id="upcoming-at-now"),
            pytest.param([7 * D - S], None, 7 * D - S, False, id="horizon-edge-inside"),
            pytest.param([7 * D], None, None, True, id="horizon-end-excluded"),
            pytest.param([-30 * D, -3 * D, -20 * D], -3 * D, None, False, id="latest-held"),
            pytest.param([5 * D, 2 * D], None, 2 * D, False, id="first-upcoming"),
            pytest.param([-20 * D, 3 * D], -20 * D, 3 * D, False, id="late-but-booked"),
        ],
    )
    def test_table(
        self,
        starts: list[timedelta],
        last_held: timedelta | None,
        next_upcoming: timedelta | None,
        overdue: bool,
    ) -> None:
        result = status([meeting(s) for s in starts])
        assert utc(result.last_held) == utc(None if last_held is None else t(last_held))
        assert utc(result.next_upcoming) == utc(None if next_upcoming is None else t(next_upcoming))
        assert result.overdue is overdue
        assert result.long_unmet is (last_held is None)

    @pytest.mark.parametrize(
        ("cadence_days", "overdue"),
        [pytest.param(7, True, id="report-cadence-7"), pytest.param(None, False, id="policy-14")],
    )
    def test_cadence_per_report(self, cadence_days: int | None, overdue: bool) -> None:
        result = status([meeting(-8 * D)], reports=[Report(SAM, "Sam", cadence_days=cadence_days)])
        assert (result.cadence_days, result.overdue) == (cadence_days or 14, overdue)

    def test_reports_in_roster_order(self) -> None:
        events = [meeting(-3 * D, attendees=[ANA]), meeting(2 * D, attendees=[LEE])]
        result = analysis(
            events, reports=[Report(SAM, "Sam"), Report(ANA, "Ana"), Report(LEE, "Lee")]
        )
        assert [r.report.email for r in result.reports] == [SAM, ANA, LEE]
        assert [r.report.email for r in result.overdue] == [SAM]
        assert [r.report.email for r in result.upcoming] == [LEE]

    def test_latest_by_instant_when_clocks_go_back(self) -> None:
        """On 25 October 02:15 CET comes after 02:30 CEST, although its wall time is earlier."""
        first = datetime(2026, 10, 25, 2, 30, tzinfo=AMS)  # 00:30 UTC
        second = datetime(2026, 10, 25, 2, 15, tzinfo=AMS, fold=1)  # 01:15 UTC
        events = [
            replace(meeting(0 * D), id=str(n), start=start, end=start + timedelta(minutes=10))
            for n, start in enumerate([second, first])
        ]
        now = datetime(2026, 10, 26, 8, tzinfo=AMS)
        assert utc(status(events, now=now).last_held) == datetime(2026, 10, 25, 1, 15, tzinfo=UTC)
        before = datetime(2026, 10, 24, 8, tzinfo=AMS)
        assert utc(status(events, now=before).next_upcoming) == utc(first)

    def test_now_in_any_zone_is_the_same_instant(self) -> None:
        events = [meeting(-14 * D), meeting(-14 * D - S, attendees=[ANA])]
        reports = [Report(SAM, "Sam"), Report(ANA, "Ana")]
        for now in (NOW, NOW.astimezone(UTC), NOW.astimezone(NY)):
            result = analysis(events, reports=reports, now=now)
            assert [r.overdue for r in result.reports] == [False, True]


class TestWhatCountsAsOneOnOne:
    """Only a standing meeting of exactly manager and report counts, whatever the casing."""

    @pytest.mark.parametrize(
        ("event", "counts"),
        [
            pytest.param(meeting(-3 * D), True, id="accepted"),
            pytest.param(meeting(-3 * D, organizer=SAM, attendees=[MARIA]), True, id="by-report"),
            pytest.param(
                meeting(-3 * D, responses={SAM: Response.TENTATIVE}), True, id="report-tentative"
            ),
            pytest.param(
                meeting(-3 * D, responses={SAM: Response.NEEDS_ACTION}), True, id="unanswered"
            ),
            pytest.param(meeting(-3 * D, rooms=[ROOM]), True, id="room-left-out"),
            pytest.param(meeting(-3 * D, status=Status.CANCELLED), False, id="cancelled"),
            pytest.param(
                meeting(-3 * D, attendees=[MARIA, SAM], responses={MARIA: Response.DECLINED}),
                False,
                id="declined-by-manager",
            ),
            pytest.param(
                meeting(-3 * D, responses={SAM: Response.DECLINED}), False, id="declined-by-report"
            ),
            pytest.param(meeting(-3 * D, attendees=[SAM, ANA]), False, id="three-people"),
            pytest.param(
                meeting(-3 * D, organizer=LEE, attendees=[MARIA, SAM]), False, id="third-organizer"
            ),
            pytest.param(
                replace(
                    meeting(-3 * D),
                    start=datetime(2026, 11, 20, tzinfo=AMS),
                    end=datetime(2026, 11, 21, tzinfo=AMS),
                    all_day=True,
                ),
                False,
                id="all-day",
            ),
            pytest.param(meeting(-3 * D, attendees=[]), False, id="manager-alone"),
            pytest.param(meeting(-3 * D, attendees=[ANA]), False, id="another-report"),
        ],
    )
    def test_table(self, event: Event, counts: bool) -> None:
        assert (status([event]).last_held is not None) is counts

    def test_emails_compared_case_insensitively(self) -> None:
        roster = team(Report("Sam@Example.COM", "Sam"), email="Maria@EXAMPLE.com")
        events = [meeting(-3 * D), meeting(D, responses={SAM: Response.DECLINED})]
        (result,) = analyse(roster, events, now=NOW, policy=POLICY, tz=AMS).reports
        assert utc(result.last_held) == utc(t(-3 * D))
        assert [(c.kind, c.by) for c in result.changes] == [(ChangeKind.DECLINED, SAM)]

    @pytest.mark.parametrize(
        ("attendees", "overdue"),
        [
            pytest.param([], True, id="hold-alone-is-not-a-1on1"),
            pytest.param([SAM], False, id="hold-with-report-invited-is-a-1on1"),
        ],
    )
    def test_kindly_hold(self, attendees: list[str], overdue: bool) -> None:
        hold = meeting(
            2 * D,
            attendees=attendees,
            responses={SAM: Response.NEEDS_ACTION},
            status=Status.TENTATIVE,
            hold_key=HoldKey(MARIA, SAM, "2026-W48"),
        )
        result = status([hold])
        assert result.overdue is overdue
        assert (result.next_upcoming is None) is overdue


class TestNewHire:
    """A start date within 14 days of today in the manager's zone, or ahead, makes a new hire."""

    @pytest.mark.parametrize(
        ("start_date", "now", "new_hire"),
        [
            pytest.param(None, NOW, False, id="no-start-date"),
            pytest.param(date(2026, 11, 10), NOW, True, id="13-days"),
            pytest.param(date(2026, 11, 9), NOW, False, id="14-days"),
            pytest.param(date(2026, 12, 1), NOW, True, id="starts-next-week"),
            pytest.param(date(2026, 11, 23), NOW, True, id="starts-today"),
            pytest.param(
                date(2026, 11, 9),
                datetime(2026, 11, 23, 0, 30, tzinfo=AMS),  # still 22 November in UTC
                False,
                id="today-is-the-managers-date",
            ),
        ],
    )
    def test_table(self, start_date: date | None, now: datetime, new_hire: bool) -> None:
        report = Report(SAM, "Sam", start_date=start_date)
        assert status([], reports=[report], now=now).new_hire is new_hire


class TestChanges:
    """Cancelled, declined and moved 1:1s from a week ago to the horizon, one change per event."""

    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            pytest.param(
                meeting(-3 * D, status=Status.CANCELLED),
                Change(ChangeKind.CANCELLED, SAM, t(-3 * D), by=MARIA),
                id="cancelled",
            ),
            pytest.param(
                meeting(2 * D, attendees=[MARIA, SAM], responses={MARIA: Response.DECLINED}),
                Change(ChangeKind.DECLINED, SAM, t(2 * D), by=MARIA),
                id="declined-by-manager",
            ),
            pytest.param(
                meeting(-D, responses={SAM: Response.DECLINED}),
                Change(ChangeKind.DECLINED, SAM, t(-D), by=SAM),
                id="declined-by-report",
            ),
            pytest.param(
                meeting(D, original_start=t(-2 * D)),
                Change(ChangeKind.RESCHEDULED, SAM, t(D), original=t(-2 * D), by=MARIA),
                id="rescheduled",
            ),
            pytest.param(
                meeting(-D, original_start=t(-10 * D)),
                Change(ChangeKind.RESCHEDULED, SAM, t(-D), original=t(-10 * D), by=MARIA),
                id="moved-into-the-window",
            ),
            pytest.param(
                meeting(9 * D, original_start=t(-D)),
                Change(ChangeKind.RESCHEDULED, SAM, t(9 * D), original=t(-D), by=MARIA),
                id="moved-out-of-the-window",
            ),
            pytest.param(
                meeting(-7 * D, status=Status.CANCELLED),
                Change(ChangeKind.CANCELLED, SAM, t(-7 * D), by=MARIA),
                id="a-week-ago-exactly",
            ),
            pytest.param(
                meeting(
                    -D,
                    status=Status.CANCELLED,
                    responses={SAM: Response.DECLINED},
                    original_start=t(-2 * D),
                ),
                Change(ChangeKind.CANCELLED, SAM, t(-D), by=MARIA),
                id="cancelled-wins",
            ),
            pytest.param(
                meeting(D, responses={SAM: Response.DECLINED}, original_start=t(-2 * D)),
                Change(ChangeKind.DECLINED, SAM, t(D), by=SAM),
                id="declined-wins-over-moved",
            ),
            pytest.param(
                meeting(
                    2 * D,
                    attendees=[MARIA, SAM],
                    responses={MARIA: Response.DECLINED, SAM: Response.DECLINED},
                ),
                Change(ChangeKind.DECLINED, SAM, t(2 * D), by=MARIA),
                id="both-declined-names-the-manager",
            ),
            pytest.param(meeting(-7 * D - S, status=Status.CANCELLED), None, id="too-old"),
            pytest.param(meeting(7 * D, status=Status.CANCELLED), None, id="past-horizon"),
            pytest.param(meeting(-D, original_start=t(-D)), None, id="same-start-not-moved"),
            pytest.param(meeting(-D), None, id="went-as-planned"),
            pytest.param(
                meeting(-D, attendees=[SAM, ANA], status=Status.CANCELLED), None, id="not-a-1on1"
            ),
        ],
    )
    def test_table(self, event: Event, expected: Change | None) -> None:
        assert status([event]).changes == (() if expected is None else (expected,))

    def test_oldest_first(self) -> None:
        events = [
            meeting(3 * D, status=Status.CANCELLED),
            meeting(-5 * D, responses={SAM: Response.DECLINED}),
            meeting(D, original_start=t(-6 * D)),
        ]
        kinds = [c.kind for c in status(events).changes]
        assert kinds == [ChangeKind.DECLINED, ChangeKind.RESCHEDULED, ChangeKind.CANCELLED]

    def test_cancelled_in_lookback(self) -> None:
        events = [
            meeting(-10 * D, status=Status.CANCELLED),
            meeting(-56 * D, status=Status.CANCELLED),
            meeting(-56 * D - S, status=Status.CANCELLED),
            meeting(D, status=Status.CANCELLED),
            meeting(-5 * D, attendees=[SAM, ANA], status=Status.CANCELLED),
            meeting(-4 * D, responses={SAM: Response.DECLINED}),
        ]
        assert status(events).cancelled_in_lookback == 2


class TestCoverage:
    """Per ISO week in the manager's zone: reports met within their cadence as of its end."""

    def test_eight_weeks_oldest_first(self) -> None:
        weeks = [w.week for w in analysis([]).coverage]
        assert weeks == [f"2026-W{n}" for n in range(41, 49)]

    def test_counts_each_week(self) -> None:
        events = [meeting(-13 * D)]  # Tuesday 10 November, week 46
        coverage = analysis(events, reports=[Report(SAM, "Sam"), Report(ANA, "Ana")]).coverage
        assert [w.met for w in coverage] == [0, 0, 0, 0, 0, 1, 1, 1]
        assert {w.total for w in coverage} == {2}
        assert coverage[-1].share == 0.5

    def test_week_end_boundaries(self) -> None:
        """A 1:1 at Monday 00:00 belongs to the week that ends then; cadence-old is not met."""
        monday = datetime(2026, 11, 16, tzinfo=AMS)
        event = replace(meeting(0 * D), start=monday, end=monday + timedelta(minutes=30))
        coverage = analysis([event], reports=[Report(SAM, "Sam", cadence_days=7)]).coverage
        assert [w.met for w in coverage] == [0, 0, 0, 0, 0, 1, 0, 0]

    def test_weeks_end_at_local_midnight_across_dst(self) -> None:
        """00:30 on Monday 26 October (CET) is 23:30 UTC on Sunday: still week 44 in Amsterdam."""
        start = datetime(2026, 10, 26, 0, 30, tzinfo=AMS)
        event = replace(meeting(0 * D), start=start, end=start + timedelta(minutes=30))
        policy = Policy(cadence_days=1)
        coverage = analysis([event], policy=policy).coverage
        assert {w.week: w.met for w in coverage}["2026-W43"] == 0
        assert {w.week: w.met for w in coverage}["2026-W44"] == 0  # a day's cadence ended by Nov 2
        near = analysis([event], policy=policy, now=datetime(2026, 10, 26, 12, tzinfo=AMS))
        assert [(w.week, w.met) for w in near.coverage[-2:]] == [("2026-W43", 0), ("2026-W44", 1)]

    def test_current_week_counts_until_now(self) -> None:
        events = [meeting(-S), meeting(S, attendees=[ANA])]
        coverage = analysis(events, reports=[Report(SAM, "Sam"), Report(ANA, "Ana")]).coverage
        assert (coverage[-1].met, coverage[-1].total) == (1, 2)

    def test_a_new_hire_counts_from_their_start_week(self) -> None:
        """Ana started Wednesday 18 November (week 47): not missing from the weeks before."""
        reports = [Report(SAM, "Sam"), Report(ANA, "Ana", start_date=date(2026, 11, 18))]
        coverage = analysis([meeting(-13 * D)], reports=reports).coverage
        assert [w.total for w in coverage] == [1, 1, 1, 1, 1, 1, 2, 2]
        assert [w.met for w in coverage] == [0, 0, 0, 0, 0, 1, 1, 1]
        assert coverage[5].share == 1.0

    def test_a_start_date_ahead_counts_nowhere_yet(self) -> None:
        reports = [Report(SAM, "Sam"), Report(ANA, "Ana", start_date=date(2026, 12, 1))]
        assert {w.total for w in analysis([], reports=reports).coverage} == {1}

    def test_team_without_reports(self) -> None:
        coverage = analysis([], reports=[]).coverage
        assert len(coverage) == 8
        assert all((w.met, w.total, w.share) == (0, 0, 1.0) for w in coverage)


# Property test: the overdue flag against the definition computed here, from
# what each generated event is, not from the predicates the code uses.
KINDS = {
    "plain": True,
    "room": True,
    "cancelled": False,
    "declined-by-manager": False,
    "declined-by-report": False,
    "three-people": False,
    "all-day": False,
    "hold-alone": False,
    "other-report": False,
}
ZONES = [ZoneInfo("UTC"), AMS, NY, ZoneInfo("Asia/Kolkata")]


def generated_event(kind: str, start: datetime, zone: ZoneInfo) -> Event:
    start = start.astimezone(zone)
    base = Event(
        id=f"{kind}-{start.isoformat()}",
        start=start,
        end=start + timedelta(minutes=45),
        organizer=MARIA,
        attendees=(Attendee(SAM, Response.ACCEPTED),),
    )
    match kind:
        case "room":
            return replace(base, attendees=(*base.attendees, Attendee(ROOM, resource=True)))
        case "cancelled":
            return replace(base, status=Status.CANCELLED)
        case "declined-by-manager":
            return replace(base, attendees=(Attendee(MARIA, Response.DECLINED), *base.attendees))
        case "declined-by-report":
            return replace(base, attendees=(Attendee(SAM, Response.DECLINED),))
        case "three-people":
            return replace(base, attendees=(*base.attendees, Attendee(ANA)))
        case "all-day":
            return replace(base, all_day=True)
        case "hold-alone":
            return replace(base, attendees=(), hold_key=HoldKey(MARIA, SAM, "2026-W01"))
        case "other-report":
            return replace(base, attendees=(Attendee(ANA, Response.ACCEPTED),))
    return base


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[datetime, Policy, int | None, list[tuple[str, datetime]]]:
    now = draw(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)).map(
            lambda d: d.replace(tzinfo=UTC)
        )
    )
    policy = Policy(
        cadence_days=draw(st.integers(1, 30)),
        lookback_days=draw(st.integers(7, 90)),
        horizon_days=draw(st.integers(1, 28)),
    )
    own = draw(st.none() | st.integers(1, 30))
    cadence = own or policy.cadence_days
    edges = [
        -timedelta(days=cadence),
        -timedelta(days=policy.lookback_days),
        timedelta(days=policy.horizon_days),
        timedelta(0),
    ]
    offset = st.one_of(
        st.integers(-100 * 86400, 30 * 86400).map(lambda s: timedelta(seconds=s)),
        st.tuples(st.sampled_from(edges), st.sampled_from([-S, 0 * S, S])).map(
            lambda pair: pair[0] + pair[1]
        ),
    )
    specs = draw(st.lists(st.tuples(st.sampled_from(sorted(KINDS)), offset), max_size=8))
    return now, policy, own, [(kind, now + delta) for kind, delta in specs]


class TestOverdueProperty:
    """The overdue flag, last held and next upcoming equal the definition recomputed here."""

    @given(scenario=scenarios(), zones=st.lists(st.sampled_from(ZONES), min_size=9, max_size=9))
    @settings(max_examples=200, deadline=None)
    def test_matches_definition(
        self,
        scenario: tuple[datetime, Policy, int | None, list[tuple[str, datetime]]],
        zones: list[ZoneInfo],
    ) -> None:
        now, policy, own, specs = scenario
        events = [generated_event(k, s, zones[i]) for i, (k, s) in enumerate(specs)]
        result = status(
            events, reports=[Report(SAM, "Sam", cadence_days=own)], now=now, policy=policy
        )

        standing = [s for kind, s in specs if KINDS[kind]]
        held = [s for s in standing if now - timedelta(days=policy.lookback_days) <= s < now]
        coming = [s for s in standing if now <= s < now + timedelta(days=policy.horizon_days)]
        cadence = timedelta(days=own or policy.cadence_days)
        overdue = (not held or now - max(held) > cadence) and not coming
        assert result.overdue is overdue
        assert utc(result.last_held) == (max(held) if held else None)
        assert utc(result.next_upcoming) == (min(coming) if coming else None)


class TestNextOneOnOne:
    """``next`` looks past the hold horizon, up to the lookahead; ``upcoming`` does not."""

    def test_a_one_on_one_two_weeks_out_is_next_but_not_upcoming(self) -> None:
        now = datetime(2026, 11, 23, 7, tzinfo=UTC)
        report = Report("sam@example.com", "Sam Lee")
        manager = Manager("maria@example.com", "Maria", reports=(report,))
        later = now + timedelta(days=14)
        meeting = Event(
            "x",
            later,
            later + timedelta(minutes=30),
            organizer=manager.email,
            attendees=(Attendee(report.email, Response.ACCEPTED),),
        )
        (status,) = analyse(
            manager, [meeting], now=now, policy=Policy(), tz=ZoneInfo("UTC")
        ).reports
        assert (status.next_one, status.next_upcoming) == (later, None)
        too_far = Policy(lookahead_days=13, horizon_days=7)
        (beyond,) = analyse(manager, [meeting], now=now, policy=too_far, tz=ZoneInfo("UTC")).reports
        assert beyond.next_one is None
