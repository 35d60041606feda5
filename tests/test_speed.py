"""No knob to tune: how much is in flight follows from the providers' limits; settings win."""

from __future__ import annotations

import pytest

from service.settings import Settings
from service.speed import GOOGLE_MOST, ROUND_TRIP_SECONDS, google_in_flight
from service.worker import worker_options


class TestGoogleInFlight:
    """Requests in flight x round trip reach the project quota (Little's law), within bounds."""

    @pytest.mark.parametrize(
        ("per_minute", "in_flight"),
        [(10_000, GOOGLE_MOST), (6_000, 40), (300, 2), (60, 1), (1, 1), (1_000_000, GOOGLE_MOST)],
    )
    def test_from_the_quota(self, per_minute: int, in_flight: int) -> None:
        assert google_in_flight(per_minute) == in_flight

    def test_the_quota_is_reached_at_the_round_trip(self) -> None:
        for per_minute in (60, 600, 6_000, 9_600):
            pace = google_in_flight(per_minute) / ROUND_TRIP_SECONDS * 60
            assert pace >= per_minute


class TestDefaults:
    """Unset, the concurrency settings follow the calendar's provider; set, they win."""

    @pytest.mark.parametrize(
        ("calendar", "managers"), [("google", 64), ("outlook", 64), ("ics", 8)]
    )
    def test_managers_follow_the_provider(self, calendar: str, managers: int) -> None:
        settings = Settings.model_validate({"calendar": calendar})
        assert settings.concurrency is None
        assert settings.managers_in_flight == managers
        assert worker_options(settings)["max_jobs"] == managers

    def test_a_lower_google_quota_means_fewer(self) -> None:
        settings = Settings(calendar="google", google={"requests_per_minute": 300})
        assert (settings.google.in_flight, settings.managers_in_flight) == (2, 2)

    def test_explicit_values_win(self) -> None:
        settings = Settings(
            calendar="google",
            concurrency=3,
            google={"max_concurrency": 5},
            worker={"max_jobs": 2},
        )
        assert (settings.managers_in_flight, settings.google.in_flight) == (3, 5)
        assert worker_options(settings)["max_jobs"] == 2
