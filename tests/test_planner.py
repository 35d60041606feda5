"""The planner's pure schedule logic: tables of tz-aware instants plus properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.backoff import exponential as backoff
from service.planner import Action, decide, due_at, job_id, local_week, stagger

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
KOLKATA = ZoneInfo("Asia/Kolkata")
UTCZ = ZoneInfo("UTC")


def _decide(now: datetime, tz: ZoneInfo, **kw: object) -> Action:
    args: dict[str, object] = {
        "day": "mon",
        "hour": 8,
        "settled": False,
        "attempts": 0,
        "max_attempts": 15,
    }
    args.update(kw)
    return decide("m@x.org", now=now, tz=tz, **args).action  # type: ignore[arg-type]


class TestDueAt:
    """The digest is due at the configured local day and hour of the current ISO week."""

    @pytest.mark.parametrize(
        ("now", "tz", "day", "hour", "due"),
        [
            # Amsterdam in winter (UTC+1): Monday 08:00 local = 07:00 UTC
            (
                datetime(2026, 11, 25, 12, tzinfo=UTC),
                AMS,
                "mon",
                8,
                datetime(2026, 11, 23, 7, tzinfo=UTC),
            ),
            # New York (UTC-5) on Sunday evening UTC is still the same ISO week
            (
                datetime(2026, 11, 23, 3, tzinfo=UTC),
                NYC,
                "mon",
                8,
                datetime(2026, 11, 16, 13, tzinfo=UTC),
            ),
            # Tokyo is already in next week's Monday
            (
                datetime(2026, 11, 29, 16, tzinfo=UTC),
                TOKYO,
                "mon",
                8,
                datetime(2026, 11, 29, 23, tzinfo=UTC),
            ),
            # half-hour zone, Friday digest
            (
                datetime(2026, 11, 24, tzinfo=UTC),
                KOLKATA,
                "fri",
                9,
                datetime(2026, 11, 27, 3, 30, tzinfo=UTC),
            ),
            # the Sunday Europe springs forward: 02:00 does not exist, the digest goes at 03:00 CEST
            (
                datetime(2026, 3, 27, tzinfo=UTC),
                AMS,
                "sun",
                2,
                datetime(2026, 3, 29, 1, tzinfo=UTC),
            ),
            # the Sunday Europe falls back: 02:00 happens twice, the first one counts (CEST)
            (
                datetime(2026, 10, 20, tzinfo=UTC),
                AMS,
                "sun",
                2,
                datetime(2026, 10, 25, 0, tzinfo=UTC),
            ),
            # the week New York changes to EDT: Monday 08:00 is now 12:00 UTC
            (
                datetime(2026, 3, 9, 13, tzinfo=UTC),
                NYC,
                "mon",
                8,
                datetime(2026, 3, 9, 12, tzinfo=UTC),
            ),
        ],
    )
    def test_table(self, now: datetime, tz: ZoneInfo, day: str, hour: int, due: datetime) -> None:
        assert due_at(now, tz, day=day, hour=hour) == due


class TestDecide:
    """Managers are enqueued once their local hour has come, until sent or failed for good."""

    monday_0730_utc = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("tz", "action"),
        [
            (AMS, Action.ENQUEUE),  # 08:30 in Amsterdam
            (UTCZ, Action.WAIT),  # 07:30 in London
            (NYC, Action.WAIT),  # 02:30 in New York
            (TOKYO, Action.ENQUEUE),  # 16:30 in Tokyo
        ],
    )
    def test_several_zones_at_one_instant(self, tz: ZoneInfo, action: Action) -> None:
        assert _decide(self.monday_0730_utc, tz) is action

    def test_catch_up_after_downtime(self) -> None:
        """A worker that starts on Tuesday still sends Monday's digest."""
        tuesday = datetime(2026, 11, 24, 15, tzinfo=UTC)
        assert _decide(tuesday, AMS) is Action.ENQUEUE
        assert _decide(tuesday, AMS, settled=True) is Action.DONE

    def test_the_moment_it_becomes_due(self) -> None:
        due = datetime(2026, 11, 23, 7, tzinfo=UTC)
        assert _decide(due - timedelta(microseconds=1), AMS) is Action.WAIT
        assert _decide(due, AMS) is Action.ENQUEUE

    def test_gives_up_after_too_many_runs(self) -> None:
        assert _decide(self.monday_0730_utc, AMS, attempts=14) is Action.ENQUEUE
        assert _decide(self.monday_0730_utc, AMS, attempts=15) is Action.GIVE_UP

    def test_week_is_the_managers_local_week(self) -> None:
        sunday_night_utc = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
        decision = decide(
            "Ken@X.org",
            now=sunday_night_utc,
            tz=TOKYO,
            day="mon",
            hour=8,
            settled=False,
            attempts=0,
            max_attempts=5,
        )
        assert (decision.manager, decision.week, decision.action) == (
            "ken@x.org",
            "2026-W49",
            Action.ENQUEUE,
        )
        assert local_week(sunday_night_utc, NYC) == "2026-W48"


class TestJobIdentity:
    """Job ids and start offsets depend on (manager, week) only."""

    def test_job_id_is_case_insensitive_and_weekly(self) -> None:
        assert job_id("Maria@Example.com", "2026-W48") == job_id("maria@example.com", "2026-W48")
        assert job_id("maria@example.com", "2026-W48") != job_id("maria@example.com", "2026-W49")
        assert "maria" not in job_id("maria@example.com", "2026-W48")

    @given(st.emails(), st.floats(min_value=0.001, max_value=3600))
    def test_stagger_is_stable_and_inside_the_window(self, email: str, window: float) -> None:
        first = stagger(email, window)
        assert first == stagger(email.lower(), window)
        assert 0 <= first < window

    def test_no_window_no_delay(self) -> None:
        assert stagger("m@x.org", 0) == 0


class TestBackoff:
    """Retry delays double from the base and never pass the cap."""

    def test_table(self) -> None:
        assert [backoff(t, base=30, cap=300) for t in range(1, 7)] == [30, 60, 120, 240, 300, 300]

    @given(st.integers(min_value=1, max_value=60), st.floats(0, 100), st.floats(0, 10_000))
    def test_bounded_and_monotonic(self, job_try: int, base: float, cap: float) -> None:
        assert 0 <= backoff(job_try, base=base, cap=cap) <= cap
        assert backoff(job_try, base=base, cap=cap) <= backoff(job_try + 1, base=base, cap=cap)


class TestDueProperties:
    """For any instant and zone, the due instant lies in the manager's current ISO week."""

    @given(
        st.datetimes(
            min_value=datetime(2000, 1, 3), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
        ),
        st.sampled_from([AMS, NYC, TOKYO, KOLKATA, UTCZ, ZoneInfo("Australia/Lord_Howe")]),
        st.sampled_from(["mon", "wed", "sun"]),
        st.integers(0, 23),
    )
    def test_same_local_week(self, now: datetime, tz: ZoneInfo, day: str, hour: int) -> None:
        due = due_at(now, tz, day=day, hour=hour)
        assert local_week(due, tz) == local_week(now, tz)
