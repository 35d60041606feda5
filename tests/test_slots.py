"""The slot finder: the first free quarter hour of working time, DST-safe, as brute force says."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.model import Interval, Policy
from service.slots import (
    blocked_after,
    find_slot,
    local_instant,
    next_boundary,
    with_span,
    working_windows,
)

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
Z_UTC = ZoneInfo("UTC")
EVERY_DAY = frozenset(range(1, 8))
POLICY = Policy()
#: a night shift spanning the early-morning hours in which clocks change
NIGHT = Policy(work_start=time(1), work_end=time(4), hold_minutes=60, work_days=EVERY_DAY)


def at(
    tz: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


def span(start: datetime, end: datetime) -> Interval:
    return Interval(start, end)


def all_day(tz: ZoneInfo, day: date) -> Interval:
    """An all-day event as connectors deliver it: midnight to midnight in the calendar's zone."""
    return Interval(
        datetime.combine(day, time(0), tz), datetime.combine(day + timedelta(days=1), time(0), tz)
    )


def instants(slot: Interval | None) -> tuple[datetime, datetime] | None:
    """The slot as UTC instants: same-zone datetimes compare on the wall clock, not in time."""
    return None if slot is None else (slot.start.astimezone(UTC), slot.end.astimezone(UTC))


def slots_of_the_day(policy: Policy, *, now: datetime, tz: ZoneInfo, count: int) -> list[Interval]:
    """Book the first free slot again and again, as the pipeline does for several reports."""
    busy: list[Interval] = []
    found: list[Interval] = []
    for _ in range(count):
        slot = find_slot(busy, now=now, policy=policy, tz=tz)
        if slot is None:
            break
        found.append(slot)
        busy.append(slot)
    return found


class TestWorkedExamples:
    """The first free slot for ordinary weeks in Amsterdam (2026-11-23 is a Monday)."""

    @pytest.mark.parametrize(
        ("now", "busy", "expected"),
        [
            pytest.param(at(AMS, 2026, 11, 23, 8), [], at(AMS, 2026, 11, 23, 9), id="monday-0800"),
            pytest.param(at(AMS, 2026, 11, 23, 9), [], at(AMS, 2026, 11, 23, 9), id="now-on-slot"),
            pytest.param(
                at(AMS, 2026, 11, 23, 10, 7), [], at(AMS, 2026, 11, 23, 10, 15), id="next-quarter"
            ),
            pytest.param(
                at(AMS, 2026, 11, 23, 10) + timedelta(seconds=1),
                [],
                at(AMS, 2026, 11, 23, 10, 15),
                id="1s-past",
            ),
            pytest.param(
                at(AMS, 2026, 11, 27, 16, 40), [], at(AMS, 2026, 11, 30, 9), id="friday-late"
            ),
            pytest.param(
                at(AMS, 2026, 11, 27, 16, 30), [], at(AMS, 2026, 11, 27, 16, 30), id="friday-last"
            ),
            pytest.param(at(AMS, 2026, 11, 28, 10), [], at(AMS, 2026, 11, 30, 9), id="saturday"),
            pytest.param(
                at(AMS, 2026, 11, 23, 8),
                [span(at(AMS, 2026, 11, 23, 9), at(AMS, 2026, 11, 23, 9, 30))],
                at(AMS, 2026, 11, 23, 9, 30),
                id="half-open-busy",
            ),
            pytest.param(
                at(AMS, 2026, 11, 23, 8),
                [
                    span(at(AMS, 2026, 11, 23, 11, 30), at(AMS, 2026, 11, 23, 16)),
                    span(at(AMS, 2026, 11, 23, 9), at(AMS, 2026, 11, 23, 11, 10)),
                ],
                at(AMS, 2026, 11, 23, 16),
                id="busy-day-gap-too-short",
            ),
            pytest.param(
                at(AMS, 2026, 11, 23, 8),
                [
                    span(at(AMS, 2026, 11, 23, 9), at(AMS, 2026, 11, 23, 10)),  # manager
                    span(at(UTC, 2026, 11, 23, 9), at(UTC, 2026, 11, 23, 9, 30)),  # report
                ],
                at(AMS, 2026, 11, 23, 10, 30),
                id="report-busy-at-managers-first-free",
            ),
            pytest.param(
                at(AMS, 2026, 11, 23, 8),
                [all_day(AMS, date(2026, 11, 23))],
                at(AMS, 2026, 11, 24, 9),
                id="all-day-oof",
            ),
            pytest.param(
                at(AMS, 2026, 11, 23, 8),
                [all_day(AMS, date(2026, 11, 23)), all_day(NY, date(2026, 11, 24))],
                at(AMS, 2026, 11, 25, 9),
                id="report-oof-in-new-york-reaches-into-amsterdam-morning",
            ),
            pytest.param(
                at(AMS, 2026, 11, 23, 8),
                [
                    span(at(AMS, 2026, 11, 23, 9), at(AMS, 2026, 11, 23, 17)),
                    span(at(AMS, 2026, 11, 23, 8), at(AMS, 2026, 11, 23, 8)),
                    span(at(AMS, 2026, 11, 20), at(AMS, 2026, 11, 24, 9, 5)),
                ],
                at(AMS, 2026, 11, 24, 9, 15),
                id="unsorted-and-started-before-now",
            ),
        ],
    )
    def test_first_free_slot(self, now: datetime, busy: list[Interval], expected: datetime) -> None:
        slot = find_slot(busy, now=now, policy=POLICY, tz=AMS)
        start = expected.astimezone(UTC)
        assert instants(slot) == (start, start + timedelta(minutes=30))

    def test_slot_is_given_in_the_managers_zone(self) -> None:
        slot = find_slot([], now=at(UTC, 2026, 11, 23, 6), policy=POLICY, tz=AMS)
        assert slot is not None
        assert (slot.start.tzinfo, slot.start.hour, slot.end.hour, slot.end.minute) == (
            AMS,
            9,
            9,
            30,
        )

    def test_nothing_free_in_the_horizon(self) -> None:
        now = at(AMS, 2026, 11, 23, 8)
        busy = [span(now, now + timedelta(days=POLICY.horizon_days))]
        assert find_slot(busy, now=now, policy=POLICY, tz=AMS) is None

    @pytest.mark.parametrize(
        ("report_busy_until", "expected"),
        [
            pytest.param(time(9, 30), at(AMS, 2026, 11, 24, 9, 30), id="ends-on-horizon-end"),
            pytest.param(time(9, 45), None, id="would-end-past-horizon"),
        ],
    )
    def test_whole_slot_inside_the_horizon(
        self, report_busy_until: time, expected: datetime | None
    ) -> None:
        now = at(AMS, 2026, 11, 23, 10)
        policy = Policy(horizon_days=1)
        busy = [
            span(now, at(AMS, 2026, 11, 23, 17)),
            span(
                at(AMS, 2026, 11, 24, 9),
                datetime.combine(date(2026, 11, 24), report_busy_until, AMS),
            ),
        ]
        slot = find_slot(busy, now=now, policy=policy, tz=AMS)
        assert instants(slot) == (
            None if expected is None else (expected.astimezone(UTC), now + timedelta(days=1))
        )

    def test_work_days_come_from_the_policy(self) -> None:
        weekend_only = Policy(work_days=frozenset({6, 7}))
        slot = find_slot([], now=at(AMS, 2026, 11, 23, 8), policy=weekend_only, tz=AMS)
        assert instants(slot) == instants(
            span(at(AMS, 2026, 11, 28, 9), at(AMS, 2026, 11, 28, 9, 30))
        )

    def test_thousands_of_overlapping_busy_intervals(self) -> None:
        now = at(UTC, 2026, 11, 23, 9)
        busy = [
            span(now + timedelta(minutes=m), now + timedelta(minutes=m + 10))
            for m in range(0, 480, 10)
        ]
        busy *= 500  # thousands of duplicates, as a busy org's calendars produce
        slot = find_slot(busy, now=now, policy=POLICY, tz=Z_UTC)
        assert instants(slot) == (at(UTC, 2026, 11, 24, 9), at(UTC, 2026, 11, 24, 9, 30))


class TestDaylightSaving:
    """On and around DST changes slots stay on the local clock, never duplicated or misplaced."""

    @pytest.mark.parametrize(
        ("tz", "now", "expected_utc"),
        [
            pytest.param(
                NY, at(NY, 2026, 3, 6, 17), at(UTC, 2026, 3, 9, 13), id="ny-spring-monday"
            ),
            pytest.param(
                NY, at(NY, 2026, 10, 30, 17), at(UTC, 2026, 11, 2, 14), id="ny-fall-monday"
            ),
            pytest.param(
                AMS, at(AMS, 2026, 3, 27, 17), at(UTC, 2026, 3, 30, 7), id="ams-spring-monday"
            ),
            pytest.param(
                AMS, at(AMS, 2026, 10, 23, 17), at(UTC, 2026, 10, 26, 8), id="ams-fall-monday"
            ),
        ],
    )
    def test_weekend_change_then_monday_nine_local(
        self, tz: ZoneInfo, now: datetime, expected_utc: datetime
    ) -> None:
        slot = find_slot([], now=now, policy=POLICY, tz=tz)
        assert instants(slot) == (expected_utc, expected_utc + timedelta(minutes=30))

    @pytest.mark.parametrize(
        ("tz", "day"),
        [
            pytest.param(NY, date(2026, 3, 8), id="ny-spring"),
            pytest.param(NY, date(2026, 11, 1), id="ny-fall"),
            pytest.param(AMS, date(2026, 3, 29), id="ams-spring"),
            pytest.param(AMS, date(2026, 10, 25), id="ams-fall"),
        ],
    )
    def test_change_day_keeps_its_working_hours(self, tz: ZoneInfo, day: date) -> None:
        """Busy until 16:30 local leaves exactly 16:30-17:00 local, however long the day."""
        policy = Policy(work_days=EVERY_DAY)
        now = datetime.combine(day, time(0), tz)
        busy = [span(now, datetime.combine(day, time(16, 30), tz))]
        slot = find_slot(busy, now=now, policy=policy, tz=tz)
        assert slot is not None
        assert (slot.start.astimezone(tz).time(), slot.end.astimezone(tz).time()) == (
            time(16, 30),
            time(17),
        )
        (window,) = working_windows(start=now, end=now + timedelta(hours=23), policy=policy, tz=tz)
        assert window.end - window.start == timedelta(hours=8)

    @pytest.mark.parametrize(
        ("tz", "day", "expected"),
        [
            pytest.param(
                NY,
                date(2026, 3, 8),
                [at(NY, 2026, 3, 8, 1), at(NY, 2026, 3, 8, 3)],
                id="ny-spring-skips-the-missing-hour",
            ),
            pytest.param(
                NY,
                date(2026, 11, 1),
                [
                    at(NY, 2026, 11, 1, 1),
                    at(NY, 2026, 11, 1, 1, fold=1),
                    at(NY, 2026, 11, 1, 2),
                    at(NY, 2026, 11, 1, 3),
                ],
                id="ny-fall-has-the-repeated-hour-once-each",
            ),
            pytest.param(
                AMS,
                date(2026, 3, 29),
                [at(AMS, 2026, 3, 29, 1), at(AMS, 2026, 3, 29, 3)],
                id="ams-spring",
            ),
            pytest.param(
                AMS,
                date(2026, 10, 25),
                [
                    at(AMS, 2026, 10, 25, 1),
                    at(AMS, 2026, 10, 25, 2),
                    at(AMS, 2026, 10, 25, 2, fold=1),
                    at(AMS, 2026, 10, 25, 3),
                ],
                id="ams-fall",
            ),
        ],
    )
    def test_night_shift_across_the_change(
        self, tz: ZoneInfo, day: date, expected: list[datetime]
    ) -> None:
        """Hours 01:00-04:00: a missing hour yields no slot, a repeated one two distinct slots."""
        found = slots_of_the_day(NIGHT, now=datetime.combine(day, time(0), tz), tz=tz, count=10)
        same_day = [s for s in found if s.start.astimezone(tz).date() == day]
        assert [s.start.astimezone(UTC) for s in same_day] == [e.astimezone(UTC) for e in expected]
        hour = timedelta(hours=1)
        assert all(s.end.astimezone(UTC) - s.start.astimezone(UTC) == hour for s in same_day)
        assert [s.start.fold for s in same_day] == [e.fold for e in expected]

    def test_slot_after_busy_ends_in_the_gap_starts_when_the_clock_resumes(self) -> None:
        policy = Policy(work_start=time(1), work_end=time(4), work_days=EVERY_DAY)
        now = at(NY, 2026, 3, 8, 1)
        busy = [
            span(now, at(UTC, 2026, 3, 8, 6, 50))
        ]  # until 01:50 EST, ten minutes before the gap
        slot = find_slot(busy, now=now, policy=policy, tz=NY)
        assert instants(slot) == (at(UTC, 2026, 3, 8, 7), at(UTC, 2026, 3, 8, 7, 30))

    def test_working_day_that_starts_inside_the_gap_starts_when_it_ends(self) -> None:
        policy = Policy(work_start=time(2, 30), work_end=time(5), work_days=EVERY_DAY)
        slot = find_slot([], now=at(NY, 2026, 3, 8), policy=policy, tz=NY)
        assert instants(slot) == (at(UTC, 2026, 3, 8, 7), at(UTC, 2026, 3, 8, 7, 30))  # 03:00 EDT

    def test_working_day_that_ends_inside_the_gap_ends_when_the_clock_jumps(self) -> None:
        policy = Policy(work_start=time(1), work_end=time(2, 30), work_days=EVERY_DAY)
        (window,) = working_windows(
            start=at(NY, 2026, 3, 8), end=at(NY, 2026, 3, 8, 12), policy=policy, tz=NY
        )
        assert instants(window) == (at(UTC, 2026, 3, 8, 6), at(UTC, 2026, 3, 8, 7))


class TestOffsetsOffTheHour:
    """With a half-hour or odd offset, working hours and quarter hours follow the local clock."""

    @pytest.mark.parametrize(
        ("now", "busy", "expected"),
        [
            pytest.param(
                at(KOLKATA, 2026, 3, 9, 8), [], at(UTC, 2026, 3, 9, 3, 30), id="opens-0900-ist"
            ),
            pytest.param(
                at(KOLKATA, 2026, 3, 9, 9, 7), [], at(KOLKATA, 2026, 3, 9, 9, 15), id="quarter"
            ),
            pytest.param(
                at(KOLKATA, 2026, 3, 9, 8),
                [span(at(UTC, 2026, 3, 9, 3, 30), at(UTC, 2026, 3, 9, 4))],
                at(KOLKATA, 2026, 3, 9, 9, 30),
                id="busy-given-in-utc",
            ),
            pytest.param(
                at(KOLKATA, 2026, 3, 9, 16, 31), [], at(KOLKATA, 2026, 3, 10, 9), id="closes-1700"
            ),
            pytest.param(
                at(KOLKATA, 2026, 3, 9, 16, 30),
                [],
                at(KOLKATA, 2026, 3, 9, 16, 30),
                id="last-slot-of-the-day",
            ),
        ],
    )
    def test_boundaries(self, now: datetime, busy: list[Interval], expected: datetime) -> None:
        slot = find_slot(busy, now=now, policy=POLICY, tz=KOLKATA)
        assert instants(slot) == (
            expected.astimezone(UTC),
            expected.astimezone(UTC) + timedelta(minutes=30),
        )

    def test_quarter_hours_of_a_clock_off_the_utc_grid(self) -> None:
        """Liberia kept UTC-00:44:30 until 1972: 09:00 there is 09:44:30 UTC, not a UTC quarter."""
        monrovia = ZoneInfo("Africa/Monrovia")
        slot = find_slot([], now=at(monrovia, 1971, 1, 4, 8), policy=POLICY, tz=monrovia)
        start = datetime(1971, 1, 4, 9, 44, 30, tzinfo=UTC)
        assert instants(slot) == (start, start + timedelta(minutes=30))


class TestLocalClockHelpers:
    """Wall times map to instants the way the working day needs."""

    @pytest.mark.parametrize(
        ("day", "wall", "expected"),
        [
            pytest.param(date(2026, 3, 8), time(9), at(UTC, 2026, 3, 8, 13), id="ordinary"),
            pytest.param(date(2026, 3, 8), time(2, 30), at(UTC, 2026, 3, 8, 7), id="in-gap"),
            pytest.param(date(2026, 3, 8), time(2), at(UTC, 2026, 3, 8, 7), id="gap-start"),
            pytest.param(date(2026, 11, 1), time(1, 30), at(UTC, 2026, 11, 1, 5, 30), id="first"),
        ],
    )
    def test_local_instant(self, day: date, wall: time, expected: datetime) -> None:
        assert local_instant(day, wall, NY) == expected

    @pytest.mark.parametrize(
        ("moment", "expected"),
        [
            pytest.param(at(UTC, 2026, 11, 1, 5, 50), at(UTC, 2026, 11, 1, 6), id="into-repeat"),
            pytest.param(at(UTC, 2026, 3, 8, 6, 50), at(UTC, 2026, 3, 8, 7), id="over-gap"),
            pytest.param(at(UTC, 2026, 3, 8, 7), at(UTC, 2026, 3, 8, 7), id="on-boundary"),
        ],
    )
    def test_next_boundary(self, moment: datetime, expected: datetime) -> None:
        assert next_boundary(moment, NY) == expected

    def test_working_windows_of_a_week(self) -> None:
        windows = working_windows(
            start=at(AMS, 2026, 11, 23, 10), end=at(AMS, 2026, 11, 30, 10), policy=POLICY, tz=AMS
        )
        assert [(w.start.day, w.start.hour, w.end.day, w.end.hour) for w in windows] == [
            (23, 10, 23, 17),
            (24, 9, 24, 17),
            (25, 9, 25, 17),
            (26, 9, 26, 17),
            (27, 9, 27, 17),
            (30, 9, 30, 10),
        ]


# Property tests. Zones with DST (including Lord Howe's half-hour change), a
# half-hour and a 45-minute offset. Working hours are whole hours so that no
# boundary falls strictly inside a repeated hour, where "the clock reads 01:30"
# happens twice; the worked examples above pin those days.
ZONES = [Z_UTC, AMS, NY, KOLKATA, ZoneInfo("Asia/Kathmandu"), ZoneInfo("Australia/Lord_Howe")]
CHANGE_DAYS = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 4, 4, 12, tzinfo=UTC),  # Lord Howe falls back 02:00 -> 01:30
    datetime(2026, 10, 3, 12, tzinfo=UTC),  # Lord Howe springs 02:00 -> 02:30
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 11, 23, tzinfo=UTC),
]


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    start = draw(st.integers(0, 22))
    end = draw(st.integers(start + 1, 23))
    minutes = draw(st.sampled_from([15, 30, 45, 60, 90]).filter(lambda m: m <= (end - start) * 60))
    days = draw(st.frozensets(st.integers(1, 7), min_size=1))
    return Policy(
        work_start=time(start),
        work_end=time(end),
        hold_minutes=minutes,
        horizon_days=draw(st.integers(1, 2)),
        work_days=days,
    )


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    """Instants within a few days of a DST change, to the second."""
    base = draw(st.sampled_from(CHANGE_DAYS))
    return base + timedelta(seconds=draw(st.integers(-2 * 86400, 86400)))


@st.composite
def busy_lists(draw: st.DrawFn, now: datetime) -> list[Interval]:
    result = []
    for _ in range(draw(st.integers(0, 12))):
        start = now + timedelta(minutes=draw(st.integers(-600, 3 * 1440)))
        length = timedelta(minutes=draw(st.integers(0, 720)))
        zone = draw(st.sampled_from(ZONES))
        result.append(Interval(start.astimezone(zone), (start + length).astimezone(zone)))
    return result


def brute_force_first(
    busy: list[Interval], *, now: datetime, policy: Policy, tz: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """Try every whole minute of the horizon against the definition, read off the local clock."""
    now = now.astimezone(UTC)
    length = timedelta(minutes=policy.hold_minutes)
    horizon_end = now + timedelta(days=policy.horizon_days)
    candidate = now.replace(second=0, microsecond=0)
    candidate += timedelta(minutes=1) if candidate < now else timedelta(0)
    while candidate + length <= horizon_end:
        if fits(Interval(candidate, candidate + length), busy, policy=policy, tz=tz):
            return candidate, candidate + length
        candidate += timedelta(minutes=1)
    return None


def fits(slot: Interval, busy: list[Interval], *, policy: Policy, tz: ZoneInfo) -> bool:
    """On the local clock: a quarter hour, a work day, first and last instant in working hours."""
    first = slot.start.astimezone(tz)
    last = (slot.end.astimezone(UTC) - timedelta(microseconds=1)).astimezone(tz)
    return (
        first.minute % 15 == 0
        and first.second == first.microsecond == 0
        and first.isoweekday() in policy.work_days
        and first.time() >= policy.work_start
        and last.date() == first.date()
        and last.time() < policy.work_end
        and not any(_overlap(slot, b) for b in busy)
    )


def _overlap(a: Interval, b: Interval) -> bool:
    """Interval.overlaps on UTC instants (same-zone comparisons ignore ``fold``)."""
    return Interval(a.start.astimezone(UTC), a.end.astimezone(UTC)).overlaps(
        Interval(b.start.astimezone(UTC), b.end.astimezone(UTC))
    )


class TestProperties:
    """Any found slot obeys every rule, and None means brute force finds nothing either."""

    @given(data=st.data(), now=moments(), policy=policies(), tz=st.sampled_from(ZONES))
    @settings(max_examples=150, deadline=None)
    def test_found_slot_obeys_the_rules(
        self, data: st.DataObject, now: datetime, policy: Policy, tz: ZoneInfo
    ) -> None:
        busy = data.draw(busy_lists(now))
        slot = find_slot(busy, now=now, policy=policy, tz=tz)
        if slot is None:
            return
        assert fits(slot, busy, policy=policy, tz=tz)
        start, end = slot.start.astimezone(UTC), slot.end.astimezone(UTC)
        assert now <= start
        assert end <= now + timedelta(days=policy.horizon_days)
        assert end - start == timedelta(minutes=policy.hold_minutes)

    @given(data=st.data(), now=moments(), policy=policies(), tz=st.sampled_from(ZONES))
    @settings(max_examples=60, deadline=None)
    def test_same_as_brute_force(
        self, data: st.DataObject, now: datetime, policy: Policy, tz: ZoneInfo
    ) -> None:
        busy = data.draw(busy_lists(now))
        expected = brute_force_first(busy, now=now, policy=policy, tz=tz)
        assert instants(find_slot(busy, now=now, policy=policy, tz=tz)) == expected


_BASE = datetime(2026, 11, 23, tzinfo=UTC)
_spans = st.tuples(st.integers(0, 40), st.integers(0, 12)).map(
    lambda p: Interval(_BASE + timedelta(minutes=15 * p[0]), _BASE + timedelta(minutes=15 * sum(p)))
)


class TestBlockedTime:
    @given(busy=st.lists(_spans, max_size=12), added=_spans, after=st.integers(0, 20))
    @settings(max_examples=300)
    def test_joining_one_span_in_is_merging_it_with_the_rest(
        self, busy: list[Interval], added: Interval, after: int
    ) -> None:
        """A placed hold joined into the merged busy time gives what merging all of it does."""
        since = _BASE + timedelta(minutes=15 * after)
        if added.end <= since:
            return  # a hold always ends after the plan opens
        blocked = blocked_after(busy, after=since)
        assert with_span(blocked, added) == blocked_after([*busy, added], after=since)
