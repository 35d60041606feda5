"""What the metrics record, read back from prometheus-client's registry (the HTTP side is
tests/test_probes.py). Counters only grow, so each test compares before and after."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from connectors.google_transport import RateLimiter, Rates
from service.errors import AuthFailed, ConnectorError, ProviderUnavailable, RateLimited
from service.model import Event, HoldKey, HoldRequest, Interval, PlacedHold
from service.ports import CalendarConnector, Warn
from service.worker import CountingConnector

UTC_ZONE = ZoneInfo("UTC")
START = datetime(2026, 11, 23, 8, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Failing(CalendarConnector):
    """A connector whose every call fails with the error it is given (None: succeeds)."""

    def __init__(self, error: ConnectorError | None) -> None:
        self.error = error

    def _maybe_fail(self) -> None:
        if self.error is not None:
            raise self.error

    async def timezone(self, manager: str) -> ZoneInfo | None:
        self._maybe_fail()
        return UTC_ZONE

    async def events(
        self,
        manager: str,
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Sequence[Event]:
        self._maybe_fail()
        return []

    async def busy(
        self,
        manager: str,
        people: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        tz: ZoneInfo,
        warn: Warn | None = None,
    ) -> Mapping[str, Sequence[Interval] | None]:
        self._maybe_fail()
        return {}

    async def create_hold(self, manager: str, hold: HoldRequest) -> PlacedHold:
        self._maybe_fail()
        key = HoldKey(manager, "sam@example.com", "2026-W48")
        return PlacedHold(key, START, START + timedelta(minutes=30), created=True)

    async def aclose(self) -> None: ...


class TestProviderRequests:
    """Each provider call is counted by provider, kind and how it ended."""

    @pytest.mark.parametrize(
        ("error", "status"),
        [
            (None, "ok"),
            (RateLimited("slow down", retry_after=3), "rate_limited"),
            (ProviderUnavailable("503"), "unavailable"),
            (AuthFailed("no consent"), "auth_failed"),
            (ConnectorError("odd answer"), "error"),
        ],
    )
    async def test_status(self, error: ConnectorError | None, status: str) -> None:
        connector = CountingConnector(Failing(error), "google")
        labels = {"provider": "google", "kind": "events", "status": status}
        before = value("kindly_provider_requests_total", **labels)
        if error is None:
            assert await connector.events("m@example.com", START, START, tz=UTC_ZONE) == []
        else:
            with pytest.raises(type(error)):
                await connector.events("m@example.com", START, START, tz=UTC_ZONE)
        assert value("kindly_provider_requests_total", **labels) == before + 1


class TestWaits:
    """Time spent waiting for a quota is added up by reason."""

    def test_google_quota(self) -> None:
        now = [100.0]
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        limiter = RateLimiter(
            Rates(per_user=2, per_project=100, window=10.0, slack=0.0),
            clock=lambda: now[0],
            sleep=sleep,
        )
        before = value("kindly_wait_seconds_total", reason="google_quota")
        for _ in range(3):  # the third request of the window waits for the first to leave it
            limiter.acquire("m@example.com")
        assert slept == [10.0]
        assert value("kindly_wait_seconds_total", reason="google_quota") == before + 10.0
