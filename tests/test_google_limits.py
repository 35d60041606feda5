"""The Google emulator's published limits: what it counts, when it refuses, how it scales."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.google_transport import Rates
from service.errors import RateLimited
from tests.emulators.google import GoogleEmulator
from tests.emulators.google.limits import (
    PER_PROJECT_PER_MINUTE,
    PER_USER_PER_MINUTE,
    PublishedLimits,
    SlidingWindow,
)
from tests.google_fixtures import NO_RETRIES, FakeClock, connector_for, running, write_org

MARIA, DAN = "maria@example.com", "dan@example.com"
#: no pacing on Kindly's side, so the emulator's limits are all that stands in the way
LIFTED = Rates(per_user=1000, per_project=1000)


def request(user: str, path: str = "/calendar/v3/users/me/settings/timezone") -> str:
    """A fingerprint as the emulator draws it: the impersonated user first."""
    return f"{user} GET {path} []"


class TestSlidingWindow:
    """Events are counted per key over the last ``span`` seconds."""

    def test_counts_per_key(self) -> None:
        clock = FakeClock()
        window = SlidingWindow(10.0, clock)
        assert [window.add("a"), window.add("a"), window.add("b")] == [1, 2, 1]

    def test_an_event_exactly_span_old_has_left(self) -> None:
        clock = FakeClock()
        window = SlidingWindow(10.0, clock)
        window.add("a")
        clock.advance(9.5)
        assert window.add("a") == 2
        clock.advance(0.5)
        assert window.add("a") == 2  # the first left; the second and this one remain


class TestPublishedLimits:
    """Requests over a limit are refused as Google refuses them, and counted as violations."""

    def test_google_defaults(self) -> None:
        limits = PublishedLimits()
        assert (limits.per_user, limits.per_project, limits.window) == (600, 10_000, 60.0)
        assert (PER_USER_PER_MINUTE, PER_PROJECT_PER_MINUTE) == (600, 10_000)

    def test_under_the_limits_nothing_is_refused(self) -> None:
        limits = PublishedLimits(per_user=2, per_project=4, clock=FakeClock())
        assert [limits.draw(request(u)) for u in (MARIA, MARIA, DAN, DAN)] == [None] * 4
        assert limits.violations == 0

    def test_over_the_user_limit(self) -> None:
        limits = PublishedLimits(per_user=2, clock=FakeClock())
        found = [limits.draw(request(MARIA)) for _ in range(3)]
        assert found == [None, None, "403-user-rate"]
        assert limits.draw(request(DAN)) is None
        assert limits.violations == 1

    def test_over_the_project_limit(self) -> None:
        limits = PublishedLimits(per_project=3, clock=FakeClock())
        found = [limits.draw(request(u)) for u in (MARIA, DAN, MARIA, DAN)]
        assert found == [None, None, None, "403-rate"]
        assert limits.violations == 1

    def test_a_scaled_window_frees_slots_sooner(self) -> None:
        clock = FakeClock()
        limits = PublishedLimits(per_user=1, window=0.1, clock=clock)
        assert limits.draw(request(MARIA)) is None
        clock.advance(0.1)
        assert limits.draw(request(MARIA)) is None
        assert limits.violations == 0

    def test_other_faults_still_apply_under_the_limits(self) -> None:
        limits = PublishedLimits(rate=1.0, kinds=("503",), clock=FakeClock())
        assert limits.draw(request(MARIA)) == "503"
        assert limits.violations == 0


@pytest.fixture
def google(tmp_path: Path) -> Iterator[GoogleEmulator]:
    with running(write_org(tmp_path / "org", {})) as emulator:
        yield emulator


class TestOnTheWire:
    """Over HTTP the refusal is Google's: 403 with the rate reason; Kindly calls it throttling."""

    @pytest.mark.parametrize(
        ("per_user", "per_project", "reason"),
        [(1, 10, "userRateLimitExceeded"), (10, 1, "rateLimitExceeded")],
    )
    async def test_refused_as_google_does(
        self, google: GoogleEmulator, per_user: int, per_project: int, reason: str
    ) -> None:
        connector = connector_for(google, rates=LIFTED, backoff=NO_RETRIES)
        google.faults = PublishedLimits(
            per_user=per_user, per_project=per_project, clock=FakeClock()
        )
        await connector.timezone(MARIA)
        with pytest.raises(RateLimited) as caught:
            await connector.timezone(MARIA)
        await connector.aclose()
        assert caught.value.status == 403
        assert f"Google said 403 {reason}:" in str(caught.value)
        assert "KINDLY_GOOGLE__REQUESTS_PER_MINUTE" in str(caught.value)

    async def test_tokens_are_not_counted(self, google: GoogleEmulator) -> None:
        limits = PublishedLimits(per_user=1, per_project=1, clock=FakeClock())
        google.faults = limits
        connector = connector_for(google, rates=LIFTED, backoff=NO_RETRIES)
        await connector.timezone(MARIA)
        await connector.aclose()
        assert google.counts(MARIA)["token"] == 1
        assert limits.violations == 0
